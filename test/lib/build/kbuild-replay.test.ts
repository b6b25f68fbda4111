// kbuild replay on the recorded commands of a real 6.1 external-module build
// (test/fixtures/kbuild-6.1). The replay itself runs in the dev-loop e2e test.
import { mkdtempSync, readFileSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import {
  builtModSource,
  cmdFileOf,
  modObjectCommand,
  patchSrcversion,
  recordedCommand,
  replay,
  replayable,
  replayPlan,
  srcversionChange,
  unescapeMakeCmd,
} from '../../../scripts/lib/build/kbuild-replay.ts';

const fx = (n: string): string => readFileSync(path.join(import.meta.dirname, '../../fixtures/kbuild-6.1', `${n}.txt`), 'utf8');
const D = '/tmp/exp/kb';

t.test('make-cmd escaping is undone: $$ is $, $(pound) is #', async (t) => {
  t.equal(unescapeMakeCmd('awk \'!x[$$0]++ { print("/d/"$$0) }\''), 'awk \'!x[$0]++ { print("/d/"$0) }\'');
  t.equal(unescapeMakeCmd('echo $(pound)define X'), 'echo #define X');
  t.equal(unescapeMakeCmd('$$$$'), '$$', 'each pair once, left to right');
});

t.test('the recorded command of a real .cmd file, by its target', async (t) => {
  const c = recordedCommand(fx('Module.symvers.cmd'), `${D}/Module.symvers`);
  t.equal(c, `sed 's/ko$/o/'  ${D}/modules.order | scripts/mod/modpost -m      -o ${D}/Module.symvers -e -i Module.symvers -T -`);
  t.equal(recordedCommand(fx('Module.symvers.cmd'), '/elsewhere/Module.symvers'), undefined, 'another target: nothing');
  t.equal(cmdFileOf(`${D}/netlink_simple_intf.o`), `${D}/.netlink_simple_intf.o.cmd`);
});

t.test('the plan: compile with objtool, modpost, .mod.o, link, in that order', async (t) => {
  const cmds = new Map([
    [`${D}/netlink_simple_intf.o`, fx('netlink_simple_intf.o.cmd')],
    [`${D}/Module.symvers`, fx('Module.symvers.cmd')],
    [`${D}/netlink_simple_intf.mod.o`, fx('netlink_simple_intf.mod.o.cmd')],
    [`${D}/netlink_simple_intf.ko`, fx('netlink_simple_intf.ko.cmd')],
  ]);
  const modFiles = new Map([[`${D}/netlink_simple_intf.ko`, fx('netlink_simple_intf.mod')]]);
  const plan = replayPlan({ moduleDir: D, modulesOrder: fx('modules.order'), modFiles, cmds });
  t.equal(plan?.length, 4);
  t.match(
    plan![0],
    /^gcc-12 .* -c -o \/tmp\/exp\/kb\/netlink_simple_intf\.o \/tmp\/exp\/kb\/netlink_simple_intf\.c +; \.\/tools\/objtool\/objtool .*--orc.* --module \/tmp\/exp\/kb\/netlink_simple_intf\.o$/,
    'objtool runs too: the ORC data keeps stack traces through the module reliable',
  );
  t.match(plan![1], /scripts\/mod\/modpost/);
  t.match(plan![2], /-c -o \/tmp\/exp\/kb\/netlink_simple_intf\.mod\.o \/tmp\/exp\/kb\/netlink_simple_intf\.mod\.c$/);
  t.match(plan![3], /^ld -r .* -o \/tmp\/exp\/kb\/netlink_simple_intf\.ko /);
  // Anything missing: no plan, so the caller runs make.
  const partial = new Map(cmds);
  partial.delete(`${D}/Module.symvers`);
  t.equal(replayPlan({ moduleDir: D, modulesOrder: fx('modules.order'), modFiles, cmds: partial }), undefined);
  t.equal(replayPlan({ moduleDir: D, modulesOrder: '', modFiles, cmds }), undefined);
  t.equal(replayPlan({ moduleDir: D, modulesOrder: fx('modules.order'), modFiles: new Map(), cmds }), undefined);
});

t.test('a module that exports symbols is not replayed: kbuild adds their CRCs outside the recorded commands', async (t) => {
  t.equal(
    replayable([readFileSync(path.join(import.meta.dirname, '../../../kernel-module/netlink_simple_intf.c'), 'utf8')]),
    true,
    'the shipped module exports nothing',
  );
  t.equal(replayable(['int f(void) { return 0; }\nEXPORT_SYMBOL_GPL(f);\n']), false);
  t.equal(replayable(['#define X 1\n', 'EXPORT_SYMBOL(g);']), false, 'in any of the files');
  t.equal(replayable(['/* MY_EXPORT_SYMBOLS_TABLE */']), true, 'only the macro itself counts');
});

t.test('the .mod.o compile is skipped while the .mod.o is newer than its .mod.c, as make does', async (t) => {
  const plan = replayPlan({
    moduleDir: D,
    modulesOrder: fx('modules.order'),
    modFiles: new Map([[`${D}/netlink_simple_intf.ko`, fx('netlink_simple_intf.mod')]]),
    cmds: new Map([
      [`${D}/netlink_simple_intf.o`, fx('netlink_simple_intf.o.cmd')],
      [`${D}/Module.symvers`, fx('Module.symvers.cmd')],
      [`${D}/netlink_simple_intf.mod.o`, fx('netlink_simple_intf.mod.o.cmd')],
      [`${D}/netlink_simple_intf.ko`, fx('netlink_simple_intf.ko.cmd')],
    ]),
  })!;
  t.same(modObjectCommand(plan[2]), { obj: `${D}/netlink_simple_intf.mod.o`, src: `${D}/netlink_simple_intf.mod.c` });
  t.equal(modObjectCommand(plan[0]), undefined, "the module's own object is always compiled");
  t.equal(modObjectCommand(plan[3]), undefined);

  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-replay-'));
  const [obj, src, log] = ['x.mod.o', 'x.mod.c', 'log'].map((n) => path.join(d, n));
  const steps = ['echo first >> log', `echo compiled >> log -c -o ${obj} ${src}`];
  writeFileSync(src, '');
  writeFileSync(obj, '');
  utimesSync(src, 1000, 1000);
  utimesSync(obj, 2000, 2000);
  const r1 = await replay(steps, d, 10_000, { root: d });
  t.equal(r1.exitCode, 0);
  t.equal(r1.skipped, 1);
  t.equal(readFileSync(log, 'utf8'), 'first\n', 'the .mod.o is newer: not compiled');
  utimesSync(src, 3000, 3000);
  const r2 = await replay(steps, d, 10_000, { root: d });
  t.equal(r2.skipped, 0);
  t.match(readFileSync(log, 'utf8'), /first\nfirst\ncompiled -c -o /, 'modpost rewrote the .mod.c: compiled');
  rmSync(obj);
  utimesSync(src, 1000, 1000);
  t.equal((await replay(steps, d, 10_000, { root: d })).skipped, 0, 'no .mod.o yet: compiled');
  const r4 = await replay(['false', 'echo never >> log'], d, 10_000, { root: d });
  t.equal(r4.exitCode, 1, 'the first failure stops the replay');
  t.notMatch(readFileSync(log, 'utf8'), /never/);
});

t.test('a .mod.c that changed only in its srcversion (a real one, from modpost) is told apart from other changes', async (t) => {
  const built = readFileSync(path.join(import.meta.dirname, '../../fixtures/kbuild-6.1/netlink_simple_intf.mod.c.txt'), 'utf8');
  const old = /srcversion, "([0-9A-F]+)"/.exec(built)![1];
  t.equal(old.length, 23, "modpost's srcversion: 23 hex digits");
  const now = built.replace(old, '0123456789ABCDEF0123456');
  t.same(srcversionChange(built, now), { from: old, to: '0123456789ABCDEF0123456' });
  t.equal(srcversionChange(built, built), undefined, 'no change');
  t.equal(
    srcversionChange(built, now.replace('{ 0x92997ed8, "_printk" },', '{ 0x92997ed8, "_printk" },\n\t{ 0x1, "kmalloc" },')),
    undefined,
    'a new import is a real change',
  );
  t.equal(srcversionChange(built, now.replace('0x92997ed8', '0x92997ed9')), undefined, 'so is another CRC');
  t.equal(srcversionChange(built, built.replace(old, 'ABC')), undefined, 'a srcversion of another length would move the bytes after it');
});

/** A stand-in .mod.c: kernel-free, with the same MODULE_INFO line shape and a .modinfo section. */
const fakeModC = (
  srcversion: string,
  extra = '',
): string => `#define MODULE_INFO(tag, info) static const char __modinfo_##tag[] __attribute__((used, section(".modinfo"), aligned(1))) = #tag "=" info
MODULE_INFO(name, "x");
int answer(void) { return 42; }
${extra}
MODULE_INFO(srcversion, "${srcversion}");
`;

t.test('patching the srcversion into the old .mod.o gives the bytes gcc gives for the new .mod.c', async (t) => {
  const { hostAppCompiler } = await import('../../../scripts/lib/build/host-kbuild.ts');
  const cc = hostAppCompiler(undefined);
  if (!cc) return t.fail('no C compiler on the host: the suite needs gcc (preflight installs it)');
  const { execFileSync } = await import('node:child_process');
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-srcv-'));
  const compile = (text: string, out: string): Buffer => {
    writeFileSync(path.join(d, 'x.mod.c'), text);
    execFileSync(cc, ['-g', '-O2', '-c', '-o', path.join(d, out), path.join(d, 'x.mod.c')], { cwd: d });
    return readFileSync(path.join(d, out));
  };
  const a = compile(fakeModC('C30937EE5B601CE60668AF0'), 'a.o');
  const b = compile(fakeModC('0123456789ABCDEF0123456'), 'b.o');
  t.not(a.compare(b), 0);
  t.same(patchSrcversion(a, { from: 'C30937EE5B601CE60668AF0', to: '0123456789ABCDEF0123456' }), b, 'byte for byte');
  t.equal(patchSrcversion(a, { from: 'FFFFFFFFFFFFFFFFFFFFFFF', to: '0123456789ABCDEF0123456' }), undefined, 'not in the object: no patch');
  const twice = Buffer.concat([a, Buffer.from('srcversion=C30937EE5B601CE60668AF0\0')]);
  t.equal(patchSrcversion(twice, { from: 'C30937EE5B601CE60668AF0', to: '0123456789ABCDEF0123456' }), undefined, 'twice: ambiguous, no patch');
});

t.test('replay patches the .mod.o when only the srcversion changed, and compiles it otherwise', async (t) => {
  const { hostAppCompiler } = await import('../../../scripts/lib/build/host-kbuild.ts');
  const cc = hostAppCompiler(undefined);
  if (!cc) return t.fail('no C compiler on the host: the suite needs gcc (preflight installs it)');
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-srcv-replay-'));
  const [obj, src, log] = ['x.mod.o', 'x.mod.c', 'log'].map((n) => path.join(d, n));
  const plan = [`echo compiled >> ${log}; ${cc} -g -O2 -c -o ${obj} ${src}`];
  const write = (text: string, when: number): void => {
    writeFileSync(src, text);
    utimesSync(src, when, when);
  };
  const compiles = (): number => (readFileSync(log, 'utf8').match(/compiled/g) ?? []).length;
  write(fakeModC('AAAAAAAAAAAAAAAAAAAAAAA'), 1000);
  const first = await replay(plan, d, 30_000, { root: d });
  t.same([first.exitCode, first.patched, compiles()], [0, 0, 1], 'nothing to patch from: compiled');
  t.equal(readFileSync(builtModSource(src), 'utf8'), fakeModC('AAAAAAAAAAAAAAAAAAAAAAA'), 'the .mod.c it came from is kept');

  write(fakeModC('BBBBBBBBBBBBBBBBBBBBBBB'), Date.now() / 1000 + 10);
  const second = await replay(plan, d, 30_000, { root: d });
  t.same([second.exitCode, second.patched, compiles()], [0, 1, 1], 'only the srcversion changed: patched, not compiled');
  const patched = readFileSync(obj);
  await replay([`${cc} -g -O2 -c -o ${d}/fresh.mod.o ${src}`], d, 30_000, { root: d });
  t.same(patched, readFileSync(path.join(d, 'fresh.mod.o')), 'the patched object is the one gcc makes');
  t.equal(readFileSync(builtModSource(src), 'utf8'), fakeModC('BBBBBBBBBBBBBBBBBBBBBBB'), 'and the kept .mod.c follows');

  write(fakeModC('CCCCCCCCCCCCCCCCCCCCCCC', 'int more(void) { return 1; }'), Date.now() / 1000 + 20);
  const third = await replay(plan, d, 30_000, { root: d });
  t.same([third.exitCode, third.patched, compiles()], [0, 0, 2], 'anything else changed: compiled');
});
