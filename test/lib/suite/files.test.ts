// What travels: sources, less build products, .gitignore'd files, the
// suite's exclude, .git, node_modules, the runs directory and ELF files.
import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { isBuildProduct, suiteFiles } from '../../../scripts/lib/suite/files.ts';

t.test('the files of a suite root', async (t) => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-files-'));
  const put = (f: string, text: string | Buffer = 'x'): void => {
    mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    writeFileSync(path.join(d, f), text);
  };
  put('drv/Makefile');
  put('drv/a.c');
  put('drv/a.o');
  put('drv/a.ko');
  put('drv/.a.o.cmd');
  put('drv/modules.order');
  put('drv/Module.symvers');
  put('drv/a.mod.c');
  put('uapi/x.h');
  put('tools/ctl.c');
  put('tools/ctl', Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]));
  put('.gitignore', '/scratch/\n*.log\n');
  put('scratch/big');
  put('run.log');
  put('tools/.gitignore', 'gen.h\n');
  put('tools/gen.h');
  put('uapi/gen.h');
  put('.git/HEAD');
  put('node_modules/kmodvm/package.json');
  put('runs/r1/report.json');
  put('docs/notes.md');
  put('docs/keep.md');
  const files = await suiteFiles(d, { exclude: ['docs/*', '!docs/keep.md'], skipDirs: [path.join(d, 'runs')] });
  t.same(files, ['.gitignore', 'drv/Makefile', 'drv/a.c', 'docs/keep.md', 'tools/.gitignore', 'tools/ctl.c', 'uapi/gen.h', 'uapi/x.h'].sort());
});

t.test('the ELF files left out are named (#29.5); include: brings ELF files and build products back (a prebuilt .ko, a firmware blob)', async (t) => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-files-elf-'));
  const elf = Buffer.from([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  mkdirSync(path.join(d, 'drv'));
  mkdirSync(path.join(d, 'prebuilt'));
  writeFileSync(path.join(d, 'drv/a.c'), 'int a;\n');
  writeFileSync(path.join(d, 'drv/a.ko'), elf);
  writeFileSync(path.join(d, 'prebuilt/dep.ko'), elf);
  writeFileSync(path.join(d, 'prebuilt/fw.bin'), elf);
  writeFileSync(path.join(d, 'tool'), elf);
  const left: string[] = [];
  t.same(await suiteFiles(d, { elfLeftOut: left }), ['drv/a.c']);
  t.same(left, ['prebuilt/fw.bin', 'tool'], 'named: the ELF files (a .ko is a build product, left out by its name)');
  const back: string[] = [];
  t.same(await suiteFiles(d, { include: ['prebuilt/'], elfLeftOut: back }), ['drv/a.c', 'prebuilt/dep.ko', 'prebuilt/fw.bin']);
  t.same(back, ['tool']);
});

t.test('build products by name', async (t) => {
  for (const p of ['a.o', 'd/a.ko', '.a.ko.cmd', 'a.mod', 'a.mod.c', 'modules.order', 'Module.symvers', 'x/.kmodvm-sources', '.a.mod.c.kmodvm-built'])
    t.ok(isBuildProduct(p), p);
  for (const p of ['a.c', 'Makefile', 'Kbuild', 'order.txt', 'mod/x.h']) t.notOk(isBuildProduct(p), p);
});

t.test(
  'a symlinked file travels only when its real path is inside the suite; the others are named (#24: notes.txt -> ~/.ssh/id_ed25519 reached the reports)',
  async (t) => {
    const home = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-files-home-'));
    writeFileSync(path.join(home, 'id_ed25519'), 'PRIVATE KEY\n');
    const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-files-links-'));
    mkdirSync(path.join(d, 'drv'));
    mkdirSync(path.join(d, '.git'));
    writeFileSync(path.join(d, 'drv/a.c'), 'int a;\n');
    writeFileSync(path.join(d, '.git/config'), '[http] extraheader = AUTHORIZATION: basic x\n');
    symlinkSync(path.join(home, 'id_ed25519'), path.join(d, 'notes.txt'));
    symlinkSync('.git/config', path.join(d, 'cfg'));
    symlinkSync('drv/a.c', path.join(d, 'alias.c'));
    symlinkSync('missing.h', path.join(d, 'gone.h'));
    symlinkSync(home, path.join(d, 'homedir'));
    const linksLeftOut: string[] = [];
    t.same(await suiteFiles(d, { linksLeftOut }), ['alias.c', 'drv/a.c'], 'only the link inside the suite (and not into .git, which does not travel either)');
    t.same(linksLeftOut.map((l) => l.split(' -> ')[0]).sort(), ['cfg', 'gone.h', 'homedir', 'notes.txt'], 'each link left out is named');
    t.match(
      linksLeftOut.find((l) => l.startsWith('notes.txt')),
      /id_ed25519 \(it points outside the suite\)/,
    );
    t.match(
      linksLeftOut.find((l) => l.startsWith('cfg')),
      /\.git\/config \(it points at \.git\/config, which does not travel\)/,
    );
  },
);

t.test(
  "any directory of kmodvm's runs (tagged CACHEDIR.TAG) is left out, not only this run's: a runs/ in the suite root cost 489 files and 4 s of upload",
  async (t) => {
    const { tagCacheDir } = await import('../../../scripts/lib/core/disk.ts');
    const root = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-files-runs-'));
    mkdirSync(path.join(root, 'drv'));
    writeFileSync(path.join(root, 'drv/a.c'), 'int a;\n');
    mkdirSync(path.join(root, 'old-runs/2026-12-03T07-20-21-235Z-10290'), { recursive: true });
    writeFileSync(path.join(root, 'old-runs/2026-12-03T07-20-21-235Z-10290/report.json'), '{}\n');
    t.ok((await suiteFiles(root)).includes('old-runs/2026-12-03T07-20-21-235Z-10290/report.json'), 'untagged: a directory like any other');
    await tagCacheDir(path.join(root, 'old-runs'));
    t.same(await suiteFiles(root), ['drv/a.c']);
  },
);
