// Cache integrity (issue 18.9), on a copy of the real image: bytes written
// into the middle of rootfs.qcow2 are found before QEMU boots (exit 4, the
// image named), and a header zeroed behind an unchanged size and mtime is
// found when QEMU refuses the drive (exit 4, not 5). vm:image verify says so too.

import { randomBytes } from 'node:crypto';
import { closeSync, copyFileSync, linkSync, mkdirSync, mkdtempSync, openSync, readdirSync, statSync, utimesSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { loadConfig } from '../../scripts/lib/core/flags.ts';
import { recordIntegrity } from '../../scripts/lib/core/integrity.ts';
import { preflight } from '../../scripts/lib/host/preflight.ts';
import { ensureImage } from '../../scripts/lib/image/build.ts';
import { imageFileNames } from '../../scripts/lib/image/image.ts';

const root = new URL('../../', import.meta.url).pathname;
const log = (l: string): void => {
  t.comment(l);
};
await preflight(log);
const img = await ensureImage(loadConfig([]).config, log);

/** A cache of its own holding the image: hard links, but a copy of rootfs.qcow2 to damage. */
async function copyOfImage(): Promise<{ cache: string; dir: string; rootfs: string }> {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-integrity-cache-'));
  const dir = path.join(cache, 'images', img.key);
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  for (const n of readdirSync(img.dir)) {
    const from = path.join(img.dir, n);
    if (statSync(from).isDirectory()) await execa('cp', ['-al', from, path.join(dir, n)]);
    else if (n === 'rootfs.qcow2' || n === 'integrity.json') copyFileSync(from, path.join(dir, n));
    else linkSync(from, path.join(dir, n));
  }
  const rootfs = path.join(dir, 'rootfs.qcow2');
  utimesSync(rootfs, 1_700_000_000, 1_700_000_000);
  await recordIntegrity(dir, imageFileNames(dir));
  return { cache, dir, rootfs };
}

function overwrite(file: string, at: number, bytes: Buffer): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, bytes, 0, bytes.length, at);
  closeSync(fd);
}

const kmodvm = (args: string[]) => execa(process.execPath, [path.join(root, 'bin/kmodvm.js'), ...args], { reject: false, cwd: root, timeout: 10 * 60_000 });

t.test('8 MiB of random bytes in the middle of rootfs.qcow2: exit 4 before anything boots, naming the image (it was a silent PASS)', async (t) => {
  const c = await copyOfImage();
  overwrite(c.rootfs, Math.floor(statSync(c.rootfs).size / 2), randomBytes(8 << 20));
  const r = await kmodvm(['test', '--cache-dir', c.cache, '--no-resume']);
  t.equal(r.exitCode, 4, r.stderr.split('\n').slice(-6).join('\n'));
  t.match(r.stderr, new RegExp(`the cached image ${c.dir} is broken: rootfs.qcow2: its sha256 differs`));
  t.notMatch(r.stderr, /verdict: PASS/);
  const v = await kmodvm(['image', 'verify', '--cache-dir', c.cache]);
  t.equal(v.exitCode, 4, 'vm:image verify fails too');
});

t.test(
  "a zeroed qcow2 header behind the recorded size and mtime: QEMU refuses the drive, and that is the image's failure (exit 4), not the boot's",
  async (t) => {
    const c = await copyOfImage();
    overwrite(c.rootfs, 0, Buffer.alloc(65536));
    utimesSync(c.rootfs, 1_700_000_000, 1_700_000_000);
    const r = await kmodvm(['test', '--cache-dir', c.cache, '--no-resume']);
    t.equal(r.exitCode, 4, r.stderr.split('\n').slice(-8).join('\n'));
    t.match(r.stderr, /QEMU refused the image's disk, and the image .* is damaged: rootfs\.qcow2: its sha256 differs/);
    t.match(r.stderr, /rm -rf .*build --force/, 'it says what to do');
  },
);
