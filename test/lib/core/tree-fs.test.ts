// Writes into a tree that code under test has touched: a link, a FIFO, or a
// directory turned into a link is replaced or refused, never followed.
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { copyInside, readInside, readRegular, replaceInside } from '../../../scripts/lib/core/tree-fs.ts';

const setup = (): { tree: string; standIn: string } => {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-treefs-'));
  const standIn = path.join(mkdtempSync(path.join(os.tmpdir(), 'kmodvm-treefs-home-')), '.profile');
  writeFileSync(standIn, 'export PATH\n');
  return { tree, standIn };
};

t.test('a link where a stamp goes is replaced by a new regular file; its target is untouched', async (t) => {
  const { tree, standIn } = setup();
  const stamp = path.join(tree, '.kmodvm-shape');
  symlinkSync(standIn, stamp);
  await replaceInside(tree, stamp, 'abc');
  t.equal(readFileSync(standIn, 'utf8'), 'export PATH\n', 'the stand-in ~/.profile is unchanged');
  t.ok(lstatSync(stamp).isFile(), 'the stamp is a regular file now');
  t.equal(readFileSync(stamp, 'utf8'), 'abc');
});

t.test('a FIFO where a file goes is replaced, not opened (opening it would block)', async (t) => {
  const { tree } = setup();
  const f = path.join(tree, 'modules.order');
  execFileSync('mkfifo', [f]);
  await t.rejects(readRegular(f, 100), { name: 'UnsafePath' }, 'reading it is refused at once');
  await replaceInside(tree, f, 'x.ko\n');
  t.equal(readFileSync(f, 'utf8'), 'x.ko\n');
});

t.test('a directory turned into a link is refused, for writes and for reads', async (t) => {
  const { tree, standIn } = setup();
  symlinkSync(path.dirname(standIn), path.join(tree, 'module'));
  await t.rejects(replaceInside(tree, path.join(tree, 'module/.kmodvm-sources'), 'x'), { name: 'UnsafePath' });
  await t.rejects(readInside(tree, path.join(tree, 'module/.profile'), 100), { name: 'UnsafePath' });
  t.notOk(lstatSync(path.dirname(standIn)).isSymbolicLink());
  t.throws(() => lstatSync(path.join(path.dirname(standIn), '.kmodvm-sources')), 'nothing was written there');
});

t.test('a path outside the tree, a linked file and an oversized file are refused', async (t) => {
  const { tree, standIn } = setup();
  await t.rejects(replaceInside(tree, standIn, 'x'), { name: 'UnsafePath' }, 'outside');
  await t.rejects(readInside(tree, standIn, 100), { name: 'UnsafePath' });
  symlinkSync(standIn, path.join(tree, 'x.mod.c'));
  await t.rejects(readRegular(path.join(tree, 'x.mod.c'), 100), { name: 'UnsafePath' }, 'a link is not read through');
  writeFileSync(path.join(tree, 'big'), Buffer.alloc(200));
  await t.rejects(readRegular(path.join(tree, 'big'), 100), /more than the 100/);
  mkdirSync(path.join(tree, 'sub'));
  await copyInside(tree, path.join(tree, 'big'), path.join(tree, 'sub/deeper/big'), 1000);
  t.equal(readFileSync(path.join(tree, 'sub/deeper/big')).length, 200, 'missing directories are made as real ones');
  t.equal(readFileSync(standIn, 'utf8'), 'export PATH\n');
});
