import t from 'tap';
import { chooseBuildMode, kernelGccMajor } from '../../scripts/lib/hostbuild.ts';

t.test("the kernel's gcc comes from its autoconf.h", async (t) => {
  // The line as it stands in Debian's linux-headers-6.1.0-56-amd64.
  t.equal(kernelGccMajor('#define CONFIG_CC_VERSION_TEXT "gcc-12 (Debian 12.2.0-14+deb12u1) 12.2.0"\n#define CONFIG_GCC_VERSION 120200\n'), 12);
  t.equal(kernelGccMajor('#define CONFIG_CLANG_VERSION 0\n'), undefined);
});

t.test('auto builds on the host only with the same compiler and the exported headers', async (t) => {
  t.same(chooseBuildMode('auto', { gccMajor: 12, hostHasCompiler: true, headers: true }), { mode: 'host', why: 'the host has gcc-12, which built the guest kernel' });
  t.same(chooseBuildMode('auto', { gccMajor: 14, hostHasCompiler: false, headers: true }), { mode: 'guest', why: 'gcc-14, which built the guest kernel, is not on the host' });
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
  const { sourceHash } = await import('../../scripts/lib/hostbuild.ts');
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
  const { hostBuildApp, hostAppCompiler } = await import('../../scripts/lib/hostbuild.ts');
  const cc = hostAppCompiler(undefined);
  if (!cc) return t.fail('no C compiler on the host: the suite needs gcc (preflight installs it)');
  const src = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-app-src-'));
  cpSync(path.join(import.meta.dirname, '../../userapp'), src, { recursive: true, filter: (f) => !f.endsWith('/netlink_userapp') });
  const out = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-app-out-'));
  const o = { appDir: src, outDir: out, appName: 'netlink_userapp', cc, timeoutMs: 120_000 };
  const first = await hostBuildApp(o);
  t.ok(first.ok, first.evidence ?? 'built');
  const elf = readFileSync(path.join(out, 'netlink_userapp'));
  t.equal(elf.subarray(0, 4).toString('latin1'), '\x7fELF');
  t.notOk(elf.includes(Buffer.from('/lib64/ld-linux-x86-64.so.2')), 'static: no dynamic loader, so it runs on any guest libc');
  const again = await hostBuildApp(o);
  t.match(again.output, /make not run/, 'unchanged sources: make is not run');
  appendFileSync(path.join(src, 'netlink_userapp.c'), 'int broken(void) { return nope; }\n');
  const bad = await hostBuildApp(o);
  t.equal(bad.ok, false);
  t.match(bad.evidence ?? '', new RegExp(`${src}/netlink_userapp\\.c:\\d+:\\d+: error: .nope. undeclared`), 'the diagnostic names the user\'s file, not the build copy');
});
