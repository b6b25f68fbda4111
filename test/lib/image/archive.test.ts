// Export and import with the real tar and zstd, on a small image directory
// laid out like a real one (the real one is 750 MiB).
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync, existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { exportImage, importImage, verifyChecksums } from '../../../scripts/lib/image/archive.ts';
import { defaultConfig, validateConfig } from '../../../scripts/lib/core/config.ts';
import { ed25519KeyPair, imageKey } from '../../../scripts/lib/image/image.ts';

const root = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const cfg = (cacheDir: string) => validateConfig({ cacheDir }, defaultConfig({}, root));

function fakeImage(cacheDir: string): string {
  const c = cfg(cacheDir);
  const { key, recipe } = imageKey(c);
  const dir = path.join(cacheDir, 'images', key);
  mkdirSync(path.join(dir, 'headers/usr/src'), { recursive: true });
  for (const f of ['rootfs.qcow2', 'vmlinux', 'vmlinuz', 'initrd-lean.cpio', 'initrd.img', 'headers/usr/src/Makefile'])
    writeFileSync(path.join(dir, f), `${f} contents\n`.repeat(100));
  // The keys must be real: an image whose keys ssh2 cannot read is a broken image (image.ts).
  const client = ed25519KeyPair('kmodvm-test');
  writeFileSync(path.join(dir, 'id_ed25519'), client.private);
  writeFileSync(path.join(dir, 'host_ed25519.pub'), ed25519KeyPair('kmodvm-guest-test').public + '\n');
  writeFileSync(
    path.join(dir, 'manifest.json'),
    JSON.stringify({ key, builderVersion: 2, recipe, kernelVersion: '6.1.0-56-amd64', packages: {}, sizes: {}, buildSeconds: 1, builtAt: 'x' }),
  );
  return key;
}

t.test('an exported image imports on another machine, verified', async (t) => {
  const teacher = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-teacher-'));
  const key = fakeImage(teacher);
  const file = path.join(teacher, 'room.tar.zst');
  await exportImage(cfg(teacher), file, () => undefined);
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  const logs: string[] = [];
  t.equal(await importImage(cfg(seat), file, (l) => logs.push(l)), key);
  t.equal(readFileSync(path.join(seat, 'images', key, 'vmlinux'), 'utf8'), readFileSync(path.join(teacher, 'images', key, 'vmlinux'), 'utf8'));
  t.ok(existsSync(path.join(seat, 'images', key, 'headers/usr/src/Makefile')));
  t.match(logs.join('\n'), /verifying \d+ checksums/);
});

t.test('a damaged archive is refused with a clear message, and leaves no image behind', async (t) => {
  const teacher = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-teacher-'));
  const key = fakeImage(teacher);
  const file = path.join(teacher, 'room.tar.zst');
  await exportImage(cfg(teacher), file, () => undefined);
  const buf = readFileSync(file);
  writeFileSync(file, buf.subarray(0, Math.floor(buf.length / 2)));
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  await t.rejects(
    importImage(cfg(seat), file, () => undefined),
    { failure: 'image', message: /not a readable kmodvm image archive|is damaged/ },
  );
  t.notOk(existsSync(path.join(seat, 'images', key)));
});

t.test('checksum verification names each bad file', async (t) => {
  t.same(verifyChecksums({ a: '1', b: '2', c: '3' }, { a: '1', b: 'x' }), ['b: checksum differs', 'c: missing']);
  t.same(verifyChecksums({ a: '1' }, { a: '1' }), []);
});
