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

t.test('--update writes a transcript only inside the suite (#24: expected -> ~/.config/autostart got a .desktop file)', async (t) => {
  const { writeUnder, readUnder } = await import('../../../scripts/lib/core/tree-fs.ts');
  const fs = await import('node:fs');
  const { tree: suite, standIn } = setup();
  const autostart = path.join(path.dirname(standIn), 'autostart');
  mkdirSync(autostart);
  symlinkSync(autostart, path.join(suite, 'expected'));
  await t.rejects(writeUnder(suite, path.join(suite, 'expected/evil.desktop'), '[Desktop Entry]\n'), { name: 'UnsafePath', message: /outside/ });
  t.same(fs.readdirSync(autostart), [], 'nothing written in the linked directory');
  await t.rejects(writeUnder(suite, path.join(suite, 'expected/new/deeper/x.txt'), 'x'), { name: 'UnsafePath' }, 'nor below it');
  t.same(fs.readdirSync(autostart), []);

  mkdirSync(path.join(suite, 'shared'));
  symlinkSync('shared', path.join(suite, 'exp'));
  const real = await writeUnder(suite, path.join(suite, 'exp/t1.txt'), 'hello\n');
  t.equal(real, path.join(fs.realpathSync(suite), 'shared/t1.txt'), 'a link that stays inside is followed, and the real path returned for the log');
  t.equal(fs.readFileSync(path.join(suite, 'shared/t1.txt'), 'utf8'), 'hello\n');
  t.equal(await writeUnder(suite, path.join(suite, 'a/b/t2.txt'), 'x'), path.join(fs.realpathSync(suite), 'a/b/t2.txt'), 'missing directories are made');

  symlinkSync(standIn, path.join(suite, 't3.txt'));
  await t.rejects(writeUnder(suite, path.join(suite, 't3.txt'), 'x'), { name: 'UnsafePath', message: /symlink/ }, 'the file itself a link: refused');
  t.equal(fs.readFileSync(standIn, 'utf8'), 'export PATH\n');
  await t.rejects(readUnder(suite, path.join(suite, 't3.txt'), 1000), { name: 'UnsafePath' }, 'and not read either (it would be printed in a diff)');
  execFileSync('mkfifo', [path.join(suite, 't4.txt')]);
  await t.rejects(writeUnder(suite, path.join(suite, 't4.txt'), 'x'), { name: 'UnsafePath' }, 'a FIFO: refused at once');
  t.equal(String(await readUnder(suite, path.join(suite, 'exp/t1.txt'), 1000)), 'hello\n');
});

t.test("a copied source keeps its execute bits, never set-id: a suite's shell test stays runnable when the host builds", async (t) => {
  const { copySource } = await import('../../../scripts/lib/core/tree-fs.ts');
  const { chmodSync, mkdtempSync, statSync, writeFileSync } = await import('node:fs');
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-mode-'));
  writeFileSync(path.join(d, 'check.sh'), '#!/bin/sh\ntrue\n');
  chmodSync(path.join(d, 'check.sh'), 0o4775);
  mkdirSync(path.join(d, 'tree'));
  await copySource(path.join(d, 'tree'), path.join(d, 'check.sh'), path.join(d, 'tree/test/check.sh'));
  t.equal(statSync(path.join(d, 'tree/test/check.sh')).mode & 0o7777, 0o755);
});
