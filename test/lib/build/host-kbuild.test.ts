import { mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { chooseBuildMode, sourceFiles } from '../../../scripts/lib/build/host-kbuild.ts';
import { kernelGccMajor } from '../../../scripts/lib/image/headers.ts';

t.test("the kernel's gcc comes from its autoconf.h", async (t) => {
  // The line as it stands in Debian's linux-headers-6.1.0-56-amd64.
  t.equal(kernelGccMajor('#define CONFIG_CC_VERSION_TEXT "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"\n#define CONFIG_GCC_VERSION 120200\n'), 12);
  t.equal(kernelGccMajor('#define CONFIG_CLANG_VERSION 0\n'), undefined);
});

t.test('auto builds on the host only with the same compiler and the exported headers', async (t) => {
  t.same(chooseBuildMode('auto', { gccMajor: 12, hostHasCompiler: true, headers: true }), {
    mode: 'host',
    why: 'the host has gcc-12, which built the guest kernel',
  });
  t.same(chooseBuildMode('auto', { gccMajor: 14, hostHasCompiler: false, headers: true }), {
    mode: 'guest',
    why: 'gcc-14, which built the guest kernel, is not on the host',
  });
  t.equal(chooseBuildMode('auto', { gccMajor: 12, hostHasCompiler: true, headers: false }).mode, 'guest');
  t.equal(chooseBuildMode('guest', { gccMajor: 12, hostHasCompiler: true, headers: true }).mode, 'guest');
});

t.test('--build host without the compiler is a setup error that names it', async (t) => {
  t.throws(() => chooseBuildMode('host', { gccMajor: 14, hostHasCompiler: false, headers: true }), /needs gcc-14 on the host/);
});

t.test('the source hash ignores build products and changes with any source byte', async (t) => {
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { sourceHash } = await import('../../../scripts/lib/build/host-kbuild.ts');
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-src-'));
  writeFileSync(path.join(d, 'a.c'), 'int x;\n');
  writeFileSync(path.join(d, 'Kbuild'), 'obj-m := a.o\n');
  const h = await sourceHash(d, '/k');
  writeFileSync(path.join(d, 'a.o'), 'junk');
  writeFileSync(path.join(d, 'a.ko'), 'junk');
  t.equal(await sourceHash(d, '/k'), h, 'build products do not count');
  t.not(await sourceHash(d, '/other-kernel'), h, 'another kernel tree is another build');
  writeFileSync(path.join(d, 'a.c'), 'int y;\n');
  t.not(await sourceHash(d, '/k'), h);
});

t.test('the app builds on the host as a static binary; unchanged sources skip make; errors name file and line', async (t) => {
  const { cpSync, mkdtempSync, readFileSync, appendFileSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { hostBuildApp, hostAppCompiler } = await import('../../../scripts/lib/build/host-kbuild.ts');
  const cc = hostAppCompiler(undefined);
  if (!cc) return t.fail('no C compiler on the host: the suite needs gcc (preflight installs it)');
  const src = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-app-src-'));
  cpSync(path.join(import.meta.dirname, '../../../userapp'), src, { recursive: true, filter: (f) => !f.endsWith('/netlink_userapp') });
  const out = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-app-out-'));
  const o = { appDir: src, outDir: out, appName: 'netlink_userapp', cc, timeoutMs: 120_000 };
  const first = await hostBuildApp(o);
  t.ok(first.ok, first.evidence ?? 'built');
  const elf = readFileSync(path.join(out, 'netlink_userapp'));
  t.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
  t.notOk(elf.includes(Buffer.from('/lib64/ld-linux-x86-64.so.2')), 'static: no dynamic loader, so it runs on any guest libc');
  const again = await hostBuildApp(o);
  t.match(again.output, /make not run/, 'unchanged sources: make is not run');
  // #29.12: the environment kbuild reads is an input of the build, so a new KCPPFLAGS builds again.
  process.env.KCPPFLAGS = '-DKMODVM_TEST_FLAG=1';
  const flagged = await hostBuildApp(o).finally(() => delete process.env.KCPPFLAGS);
  t.notMatch(flagged.output, /make not run/, 'KCPPFLAGS changed: make runs again');
  t.match((await hostBuildApp(o)).output, /^(?!.*make not run)/s, 'and back without it: again, the old build is not taken for this one');
  appendFileSync(path.join(src, 'netlink_userapp.c'), 'int broken(void) { return nope; }\n');
  const bad = await hostBuildApp(o);
  t.equal(bad.ok, false);
  t.match(
    bad.evidence ?? '',
    new RegExp(`${src}/netlink_userapp\\.c:\\d+:\\d+: error: .nope. undeclared`),
    "the diagnostic names the user's file, not the build copy",
  );
});

t.test('the guest gets the module without its debug sections; the host keeps the full one', async (t) => {
  const { mkdtempSync, readFileSync, writeFileSync, statSync, utimesSync, existsSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { execFileSync } = await import('node:child_process');
  const { guestCopy, GUEST_COPY_DIR, hostAppCompiler } = await import('../../../scripts/lib/build/host-kbuild.ts');
  const cc = hostAppCompiler(undefined);
  if (!cc) return t.fail('no C compiler on the host: the suite needs gcc (preflight installs it)');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-strip-'));
  writeFileSync(path.join(dir, 'm.c'), 'int answer(int x) { int y = x * 2; return y + 1; }\nconst char name[] = "kmodvm";\n');
  // A relocatable object with DWARF, as kbuild links a .ko (ld -r) from the kernel's -g objects.
  const ko = path.join(dir, 'm.ko');
  execFileSync(cc, ['-g', '-O2', '-c', '-o', ko, path.join(dir, 'm.c')]);
  const full = readFileSync(ko);
  t.ok(full.includes(Buffer.from('.debug_info')), 'the build has debug sections');
  const copy = await guestCopy(ko, 30_000);
  t.equal(copy, path.join(dir, GUEST_COPY_DIR, 'm.ko'), 'same name, beside the build');
  const stripped = readFileSync(copy);
  t.notOk(stripped.includes(Buffer.from('.debug_info')), 'no debug sections in the guest copy');
  t.ok(stripped.length < full.length, `${stripped.length} < ${full.length} bytes`);
  t.ok(stripped.includes(Buffer.from('kmodvm')) && stripped.includes(Buffer.from('answer')), 'code, data and symbols stay');
  t.same(readFileSync(ko), full, 'the host keeps the full module');
  t.same((await import('node:fs')).readdirSync(path.join(dir, GUEST_COPY_DIR)), ['m.ko'], 'no temporary file left behind');

  // Unchanged module: the copy is reused; a newer build makes a new one.
  const before = statSync(copy).mtimeMs;
  t.equal(await guestCopy(ko, 30_000), copy);
  t.equal(statSync(copy).mtimeMs, before, 'not stripped again');
  const later = new Date(Date.now() + 5_000);
  utimesSync(ko, later, later);
  await guestCopy(ko, 30_000);
  t.ok(statSync(copy).mtimeMs > before, 'stripped again after a rebuild');

  // Not an object strip understands: the guest gets the file as built.
  const odd = path.join(dir, 'odd.ko');
  writeFileSync(odd, 'not an ELF file\n');
  t.equal(await guestCopy(odd, 30_000), odd);
  t.notOk(existsSync(path.join(dir, GUEST_COPY_DIR, 'odd.ko')), 'no copy of a file strip rejected');
});

t.test('a module tree with a `loop -> .` symlink is listed once, without following the loop (it was ELOOP, exit 70)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-loop-'));
  mkdirSync(path.join(dir, 'sub'));
  writeFileSync(path.join(dir, 'Makefile'), 'obj-m := x.o\n');
  writeFileSync(path.join(dir, 'x.c'), '');
  writeFileSync(path.join(dir, 'sub', 'y.h'), '');
  symlinkSync('.', path.join(dir, 'loop'));
  symlinkSync('x.c', path.join(dir, 'alias.c'));
  t.same(await sourceFiles(dir), ['Makefile', 'alias.c', 'sub/y.h', 'x.c']);
});

t.test('kmodvm writes no stamp or kept source through a link the build left (#24: a stand-in ~/.profile was overwritten)', async (t) => {
  const { hostMake, guestCopy, GUEST_COPY_DIR } = await import('../../../scripts/lib/build/host-kbuild.ts');
  const fs = await import('node:fs');
  const home = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-standin-home-'));
  const standIn = path.join(home, '.profile');
  writeFileSync(standIn, 'export PATH\n');
  const src = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-links-src-'));
  const out = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-links-out-'));
  // The Makefile runs in the sandbox, where standIn is not even visible; the links only name it.
  writeFileSync(
    path.join(src, 'Makefile'),
    ['all:', '\techo built > product', `\tln -sf ${standIn} .kmodvm-shape`, `\tln -sf ${standIn} .kmodvm-sources`, `\tln -sf ${standIn} x.mod.c`, ''].join(
      '\n',
    ),
  );
  const kdir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-links-kdir-'));
  const b = await hostMake({ srcDir: src, outDir: out, product: 'product', makeArgs: [], hashSalt: 'links', timeoutMs: 60_000, replayKdir: kdir });
  t.equal(b.ok, true, b.evidence ?? b.output);
  t.equal(fs.readFileSync(standIn, 'utf8'), 'export PATH\n', 'the stand-in is unchanged');
  for (const f of ['.kmodvm-shape', '.kmodvm-sources']) t.ok(fs.lstatSync(path.join(out, f)).isFile(), `${f} is kmodvm's own regular file`);
  t.notOk(fs.existsSync(path.join(out, '.x.mod.c.kmodvm-built')), 'a linked .mod.c is not kept (its object is compiled next time, never patched)');

  // The guest copy's directory turned into a link to elsewhere: refused, nothing written there.
  const ko = path.join(out, 'm.ko');
  writeFileSync(ko, 'not an ELF file\n');
  fs.symlinkSync(home, path.join(out, GUEST_COPY_DIR));
  await t.rejects(guestCopy(ko, 30_000, out), { name: 'UnsafePath' });
  t.same(fs.readdirSync(home), ['.profile'], 'nothing written in the linked directory');
  // A module that is a link to a host file is not a module.
  fs.rmSync(path.join(out, GUEST_COPY_DIR));
  fs.rmSync(ko);
  fs.symlinkSync(standIn, ko);
  await t.rejects(guestCopy(ko, 30_000, out), { name: 'UnsafePath' });
});

t.test('syncTree replaces a link the last build left where a source goes, and refuses a linked directory', async (t) => {
  const { syncTree } = await import('../../../scripts/lib/suite/host-build.ts');
  const fs = await import('node:fs');
  const home = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-sync-home-'));
  const standIn = path.join(home, '.profile');
  writeFileSync(standIn, 'export PATH\n');
  const root = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-sync-src-'));
  mkdirSync(path.join(root, 'module'));
  writeFileSync(path.join(root, 'module/m.c'), 'int x;\n');
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-sync-tree-'));
  mkdirSync(path.join(tree, 'module'));
  fs.symlinkSync(standIn, path.join(tree, 'module/m.c'));
  fs.symlinkSync('m.c', path.join(root, 'module/alias.c'));
  await syncTree({ root, mounts: [] }, ['module/m.c', 'module/alias.c'], tree);
  t.equal(
    fs.readFileSync(path.join(tree, 'module/alias.c'), 'utf8'),
    'int x;\n',
    "the suite's own link inside it is copied as its target (the stranger trial met exit 70 here)",
  );
  t.equal(fs.readFileSync(standIn, 'utf8'), 'export PATH\n', 'the stand-in is unchanged');
  t.equal(fs.readFileSync(path.join(tree, 'module/m.c'), 'utf8'), 'int x;\n');
  fs.rmSync(path.join(tree, 'module'), { recursive: true });
  fs.symlinkSync(home, path.join(tree, 'module'));
  await t.rejects(syncTree({ root, mounts: [] }, ['module/m.c'], tree), { name: 'UnsafePath' });
  t.same(fs.readdirSync(home), ['.profile']);
});

t.test("the build sandbox reads the image's whole headers tree, and the -common tree an older image's Makefile names absolutely", async (t) => {
  const { kbuildReadable } = await import('../../../scripts/lib/build/host-kbuild.ts');
  const img = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-kreadable-'));
  const kdir = path.join(img, 'headers/usr/src/linux-headers-6.1.0-57-amd64');
  mkdirSync(kdir, { recursive: true });
  // The -amd64 Makefile as exportHeaders writes it now, and as it wrote it before (the real line of a cached image).
  writeFileSync(path.join(kdir, 'Makefile'), 'include ../linux-headers-6.1.0-57-common/Makefile\n');
  t.same(await kbuildReadable(kdir), [path.join(img, 'headers')]);
  writeFileSync(path.join(kdir, 'Makefile'), `include ${path.join(img, 'headers')}/usr/src/linux-headers-6.1.0-57-common/Makefile\n`);
  t.same(await kbuildReadable(kdir), [path.join(img, 'headers')], 'inside the tree: nothing more');
  writeFileSync(path.join(kdir, 'Makefile'), 'include /root/.cache/kmodvm/images/604710d6ef4c5561/headers/usr/src/linux-headers-6.1.0-57-common/Makefile\n');
  t.same(
    await kbuildReadable(kdir),
    [path.join(img, 'headers'), '/root/.cache/kmodvm/images/604710d6ef4c5561/headers'],
    "an imported image's Makefile names the exporting cache's tree: its whole headers tree (-common's scripts/ links into linux-kbuild)",
  );
  t.same(await kbuildReadable('/lib/modules/6.1.0-57-amd64/build-nowhere'), ['/lib/modules/6.1.0-57-amd64/build-nowhere'], 'any other kdir: itself');
});
