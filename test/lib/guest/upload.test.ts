// The upload's staging: tar -h follows links, so only regular files whose
// real path is inside their part's directory are sent; the rest are named.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { stageTrees } from '../../../scripts/lib/guest/upload.ts';

t.test('a link a build left in its tree to a host file is not sent; a file and a link inside are', async (t) => {
  const home = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-upload-home-'));
  writeFileSync(path.join(home, 'id_ed25519'), 'PRIVATE KEY\n');
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-upload-tree-'));
  mkdirSync(path.join(tree, 'drv/.kmodvm-guest'), { recursive: true });
  writeFileSync(path.join(tree, 'drv/a.c'), 'int a;\n');
  writeFileSync(path.join(tree, 'drv/.kmodvm-guest/a.ko'), 'ko\n');
  symlinkSync(path.join(home, 'id_ed25519'), path.join(tree, 'drv/notes.txt'));
  symlinkSync('a.c', path.join(tree, 'drv/alias.c'));
  execFileSync('mkfifo', [path.join(tree, 'drv/fifo')]);
  const staged = await stageTrees('/root/kmodvm', [
    { localDir: tree, sub: '.', files: ['drv/a.c', 'drv/notes.txt', 'drv/alias.c', 'drv/fifo'] },
    { localDir: path.join(tree, 'drv/.kmodvm-guest'), sub: 'drv', files: ['a.ko'] },
  ]);
  try {
    t.same(staged.files, ['drv/a.c', 'drv/alias.c', 'drv/a.ko']);
    t.same(staged.leftOut, ['drv/notes.txt', 'drv/fifo']);
    const t0 = await staged.tar(staged.files, 10_000);
    const parts: Buffer[] = [];
    for await (const c of t0.stream) parts.push(c as Buffer);
    await t0.done;
    const tar = Buffer.concat(parts);
    t.notOk(tar.includes(Buffer.from('PRIVATE KEY')), 'the key is not in the stream');
    t.ok(tar.includes(Buffer.from('int a;')));
  } finally {
    await staged.cleanup();
  }
});

t.test('the tar is streamed: a 120 MB file goes up (#24: it failed at the buffer limit as an upload failure)', async (t) => {
  const { truncateSync } = await import('node:fs');
  const bigDir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-upload-big-'));
  writeFileSync(path.join(bigDir, 'big.bin'), '');
  truncateSync(path.join(bigDir, 'big.bin'), 120 * 2 ** 20);
  const staged = await stageTrees('/root/kmodvm', [{ localDir: bigDir, sub: '.', files: ['big.bin'] }]);
  try {
    const { stream, done } = await staged.tar(staged.files, 60_000);
    let bytes = 0;
    for await (const c of stream) bytes += (c as Buffer).length;
    await done;
    t.ok(bytes > 120 * 2 ** 20, `${bytes} bytes streamed`);
  } finally {
    await staged.cleanup();
  }
});

t.test(
  "a module dir that is the suite root (dir: ., as Debian's v4l2loopback-dkms is laid out): the root and the module's copy share the sub '.'",
  async (t) => {
    const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-upload-dot-'));
    mkdirSync(path.join(tree, '.kmodvm-guest'));
    writeFileSync(path.join(tree, 'v4l2loopback.c'), 'int v;\n');
    writeFileSync(path.join(tree, '.kmodvm-guest/v4l2loopback.ko'), 'stripped ko\n');
    const staged = await stageTrees('/root/kmodvm', [
      { localDir: tree, sub: '.', files: ['v4l2loopback.c'] },
      { localDir: path.join(tree, '.kmodvm-guest'), sub: '.', files: ['v4l2loopback.ko'] },
    ]);
    try {
      t.same(staged.files, ['v4l2loopback.c', 'v4l2loopback.ko']);
      const { stream, done } = await staged.tar(staged.files, 10_000);
      const parts: Buffer[] = [];
      for await (const c of stream) parts.push(c as Buffer);
      await done;
      const list = execFileSync('tar', ['-t', '-f', '-'], { input: Buffer.concat(parts) })
        .toString()
        .trim()
        .split('\n');
      t.same(list, ['root/kmodvm/v4l2loopback.c', 'root/kmodvm/v4l2loopback.ko'], 'both land in the suite root, the stage roots taken off');
    } finally {
      await staged.cleanup();
    }
  },
);
