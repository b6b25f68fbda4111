// Export and import with the real tar and zstd, on a small image directory
// laid out like a real one (the real one is 750 MiB).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { defaultConfig, validateConfig } from '../../../scripts/lib/core/config.ts';
import type { KmodvmError } from '../../../scripts/lib/core/errors.ts';
import { exportImage, importImage, verifyChecksums } from '../../../scripts/lib/image/archive.ts';
import { ed25519KeyPair, imageKey } from '../../../scripts/lib/image/image.ts';

const root = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const cfg = (cacheDir: string) => validateConfig({ cacheDir }, defaultConfig({}, root));

function fakeImage(cacheDir: string): string {
  const c = cfg(cacheDir);
  const { key, recipe } = imageKey(c);
  const dir = path.join(cacheDir, 'images', key);
  mkdirSync(path.join(dir, 'headers/usr/src'), { recursive: true });
  for (const f of ['rootfs.qcow2', 'vmlinux', 'vmlinuz', 'initrd.img', 'headers/usr/src/Makefile'])
    writeFileSync(path.join(dir, f), `${f} contents\n`.repeat(100));
  // A lean initrd as the image build makes it (newc cpio), with the early sshd's files: import gives the seat keys of its own in it.
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-initrd-'));
  for (const d of ['usr/sbin', 'etc/ssh', 'root/.ssh']) mkdirSync(path.join(tree, d), { recursive: true });
  writeFileSync(path.join(tree, 'usr/sbin/sshd'), 'sshd');
  writeFileSync(path.join(tree, 'etc/ssh/ssh_host_ed25519_key'), 'the teacher host key');
  writeFileSync(path.join(tree, 'root/.ssh/authorized_keys'), 'the teacher client key');
  execFileSync('sh', ['-c', `cd ${tree} && find . | sort | cpio --create --format=newc --quiet -O ${path.join(dir, 'initrd-lean.cpio')}`]);
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
  const fp = await exportImage(cfg(teacher), file, () => undefined);
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  const logs: string[] = [];
  t.equal(await importImage(cfg(seat), file, (l) => logs.push(l), { trust: fp }), key);
  t.equal(readFileSync(path.join(seat, 'images', key, 'vmlinux'), 'utf8'), readFileSync(path.join(teacher, 'images', key, 'vmlinux'), 'utf8'));
  t.ok(existsSync(path.join(seat, 'images', key, 'headers/usr/src/Makefile')));
  t.match(logs.join('\n'), /verifying \d+ checksums/);
  // The seat's own keys: not the teacher's, in the initrd the lean guest's sshd reads, and the teacher's kept for the root file system's.
  const seatDir = path.join(seat, 'images', key);
  t.not(readFileSync(path.join(seatDir, 'id_ed25519'), 'utf8'), readFileSync(path.join(teacher, 'images', key, 'id_ed25519'), 'utf8'), 'a fresh client key');
  t.equal(readFileSync(path.join(seatDir, 'shared-keys/id_ed25519'), 'utf8'), readFileSync(path.join(teacher, 'images', key, 'id_ed25519'), 'utf8'));
  const unpacked = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-unpacked-'));
  execFileSync('sh', ['-c', `cd ${unpacked} && cpio -i -d --quiet < ${path.join(seatDir, 'initrd-lean.cpio')}`]);
  t.equal(readFileSync(path.join(unpacked, 'root/.ssh/authorized_keys'), 'utf8'), readFileSync(path.join(seatDir, 'id_ed25519.pub'), 'utf8'));
  t.equal(readFileSync(path.join(unpacked, 'etc/ssh/ssh_host_ed25519_key.pub'), 'utf8'), readFileSync(path.join(seatDir, 'host_ed25519.pub'), 'utf8'));
  t.equal(readFileSync(path.join(unpacked, 'usr/sbin/sshd'), 'utf8'), 'sshd', 'the rest of the initrd as it was');
  // Two seats: two different keys.
  const seat2 = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  await importImage(cfg(seat2), file, () => undefined, { trust: fp });
  t.not(
    readFileSync(path.join(seat2, 'images', key, 'id_ed25519'), 'utf8'),
    readFileSync(path.join(seatDir, 'id_ed25519'), 'utf8'),
    'no two seats share a client key',
  );
});

t.test('a damaged archive is refused with a clear message, and leaves no image behind', async (t) => {
  const teacher = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-teacher-'));
  const key = fakeImage(teacher);
  const file = path.join(teacher, 'room.tar.zst');
  const fp = await exportImage(cfg(teacher), file, () => undefined);
  const buf = readFileSync(file);
  writeFileSync(file, buf.subarray(0, Math.floor(buf.length / 2)));
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  await t.rejects(
    importImage(cfg(seat), file, () => undefined, { trust: fp }),
    { failure: 'image', message: /not a readable kmodvm image archive|is damaged/ },
  );
  t.notOk(existsSync(path.join(seat, 'images', key)));
});

t.test('checksum verification names each bad file', async (t) => {
  t.same(verifyChecksums({ a: '1', b: '2', c: '3' }, { a: '1', b: 'x' }), ['b: checksum differs', 'c: missing']);
  t.same(verifyChecksums({ a: '1' }, { a: '1' }), []);
});

/** An exported archive, changed by mutate(image dir) and packed again with the real tar: what an attacker can hand a seat. */
async function tampered(mutate: (dir: string, key: string) => void, tarArgs: string[] = []): Promise<{ file: string; fp: string; key: string }> {
  const teacher = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-teacher-'));
  const key = fakeImage(teacher);
  const file = path.join(teacher, 'room.tar.zst');
  const fp = await exportImage(cfg(teacher), file, () => undefined);
  mutate(path.join(teacher, 'images', key), key);
  execFileSync('tar', ['--create', '--zstd', '--file', file, '--directory', path.join(teacher, 'images'), ...tarArgs, key]);
  return { file, fp, key };
}

const refused = async (t: Test, a: { file: string; fp: string; key: string }, re: RegExp): Promise<void> => {
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  const e = await importImage(cfg(seat), a.file, () => undefined, { trust: a.fp }).then(
    () => undefined,
    (x: KmodvmError) => x,
  );
  t.equal(e?.failure, 'image', 'refused as an image failure (exit 4)');
  t.match(`${e?.message}\n${e?.evidence ?? ''}`, re);
  t.notOk(existsSync(path.join(seat, 'images', a.key)), 'no image is left behind');
};

t.test('import takes an archive only with --trust FINGERPRINT, the one export printed', async (t) => {
  const teacher = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-teacher-'));
  const key = fakeImage(teacher);
  const file = path.join(teacher, 'room.tar.zst');
  const logs: string[] = [];
  const fp = await exportImage(cfg(teacher), file, (l) => logs.push(l));
  t.match(fp, /^[0-9a-f]{32}$/);
  t.match(logs.join('\n'), new RegExp(`import room.tar.zst --trust ${fp}`), 'export prints the command with the fingerprint');
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  await t.rejects(
    importImage(cfg(seat), file, () => undefined),
    { failure: 'usage', message: new RegExp(`fingerprint is ${fp}.*told to trust it`) },
  );
  await t.rejects(
    importImage(cfg(seat), file, () => undefined, { trust: '0'.repeat(32) }),
    { failure: 'usage', message: /not the 0{32} you trust/ },
  );
  t.notOk(existsSync(path.join(seat, 'images', key)));
});

t.test('the audit: a file the checksums do not cover (a Makefile the host build would run) is refused', async (t) => {
  const a = await tampered((dir) => {
    mkdirSync(path.join(dir, 'headers/usr/src/evil'), { recursive: true });
    writeFileSync(path.join(dir, 'headers/usr/src/evil/Makefile'), 'all:\n\tid > /tmp/pwned\n');
  });
  await refused(t, a, /not covered by its checksums/);
});

t.test('a file the checksums list but the archive lacks is refused', async (t) => {
  await refused(t, await tampered((dir) => rmSync(path.join(dir, 'vmlinuz'))), /vmlinuz: missing/);
});

t.test('a FIFO (it once hung the import) is refused before anything is extracted', async (t) => {
  await refused(t, await tampered((dir) => execFileSync('mkfifo', [path.join(dir, 'headers/fifo')])), /not files, directories or symlinks/);
});

t.test('a member path with .. is refused before anything is extracted', async (t) => {
  await refused(t, await tampered(() => undefined, ['--transform', 's,/vmlinux$,/../escaped,']), /outside its one image directory/);
});

t.test('a symlink that export.json does not list, or that points out of the image, is refused', async (t) => {
  await refused(t, await tampered((dir) => symlinkSync('/etc', path.join(dir, 'headers/etc'))), /symlinks are not the ones/);
});

t.test('without --trust only export.json is extracted (#24: a 33 KB archive wrote 1 GiB before the fingerprint was checked)', async (t) => {
  const teacher = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-teacher-'));
  fakeImage(teacher);
  const file = path.join(teacher, 'room.tar.zst');
  await exportImage(cfg(teacher), file, () => undefined);
  const tars: string[][] = [];
  const proc = await import('../../../scripts/lib/core/proc.ts');
  const { importImage: mockedImport } = await t.mockImport<typeof import('../../../scripts/lib/image/archive.ts')>('../../../scripts/lib/image/archive.ts', {
    '../../../scripts/lib/core/proc.ts': {
      ...proc,
      run: (cmd: string, args: readonly string[], o: Parameters<typeof proc.run>[2]) => {
        if (cmd === 'tar' && args.includes('--extract')) tars.push([...args]);
        return proc.run(cmd, args, o);
      },
    },
  });
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  await t.rejects(
    mockedImport(cfg(seat), file, () => undefined),
    { failure: 'usage', message: /told to trust it/ },
  );
  t.equal(tars.length, 1, 'one extraction');
  t.match(tars[0].slice(-2), ['--occurrence=1', /^[0-9a-f]{16}\/export\.json$/], 'and only of export.json');
});

t.test("the seat's new keys are not written through a link inside the archive's initrd (#24: etc/ssh -> the host's)", async (t) => {
  const teacher = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-teacher-'));
  const key = fakeImage(teacher);
  const hostSsh = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-host-etc-ssh-'));
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-initrd-evil-'));
  mkdirSync(path.join(tree, 'usr/sbin'), { recursive: true });
  mkdirSync(path.join(tree, 'etc'));
  writeFileSync(path.join(tree, 'usr/sbin/sshd'), 'sshd');
  symlinkSync(hostSsh, path.join(tree, 'etc/ssh'));
  execFileSync('sh', ['-c', `cd ${tree} && find . | sort | cpio --create --format=newc --quiet -O ${path.join(teacher, 'images', key, 'initrd-lean.cpio')}`]);
  const file = path.join(teacher, 'room.tar.zst');
  const fp = await exportImage(cfg(teacher), file, () => undefined);
  const seat = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-seat-'));
  await t.rejects(
    importImage(cfg(seat), file, () => undefined, { trust: fp }),
    { failure: 'image', message: /archive is refused: .*etc\/ssh.*symlink/ },
  );
  t.same(readdirSync(hostSsh), [], "nothing written into the host's directory");
  t.notOk(existsSync(path.join(seat, 'images', key)), 'no image is left behind');
});
