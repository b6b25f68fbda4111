import { closeSync, mkdtempSync, openSync, utimesSync, writeFileSync, writeSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { checkIntegrity, readIntegrity, recordIntegrity } from '../../../scripts/lib/core/integrity.ts';

/** Overwrites bytes in the middle of a file, as a bad disk or a careless dd would: same size. */
function scribble(file: string, at: number, len: number, keepMtime = false): void {
  const fd = openSync(file, 'r+');
  writeSync(fd, Buffer.alloc(len, 0xa5), 0, len, at);
  closeSync(fd);
  if (keepMtime) utimesSync(file, 1_700_000_000, 1_700_000_000);
}

t.test('bytes written into the middle of a recorded file are found (its mtime moved, so it is hashed again)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-integrity-'));
  writeFileSync(path.join(dir, 'rootfs.qcow2'), Buffer.alloc(4 << 20, 1));
  writeFileSync(path.join(dir, 'vmlinux'), 'kernel');
  const rec = await recordIntegrity(dir, ['rootfs.qcow2', 'vmlinux']);
  t.same(await readIntegrity(dir), rec);
  t.same(await checkIntegrity(dir, rec), [], 'as written');
  await new Promise((r) => setTimeout(r, 20));
  scribble(path.join(dir, 'rootfs.qcow2'), 2 << 20, 65536);
  t.same(await checkIntegrity(dir, rec), ['rootfs.qcow2: its sha256 differs from when it was written']);
});

t.test('a change that kept size and mtime is found by a full verify (vm:image verify, or QEMU refusing the drive)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-integrity-'));
  writeFileSync(path.join(dir, 'rootfs.qcow2'), Buffer.alloc(1 << 20, 1));
  utimesSync(path.join(dir, 'rootfs.qcow2'), 1_700_000_000, 1_700_000_000);
  const rec = await recordIntegrity(dir, ['rootfs.qcow2']);
  scribble(path.join(dir, 'rootfs.qcow2'), 0, 512, true);
  t.same(await checkIntegrity(dir, rec), [], 'a stat alone cannot tell');
  t.same(await checkIntegrity(dir, rec, { all: true }), ['rootfs.qcow2: its sha256 differs from when it was written']);
});

t.test('a missing, resized or replaced file is named', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-integrity-'));
  for (const n of ['a', 'b']) writeFileSync(path.join(dir, n), 'x');
  const rec = await recordIntegrity(dir, ['a', 'b']);
  writeFileSync(path.join(dir, 'a'), 'xy');
  (await import('node:fs')).rmSync(path.join(dir, 'b'));
  t.same(await checkIntegrity(dir, rec), ['a: 2 bytes, 1 when it was written', 'b: missing']);
});
