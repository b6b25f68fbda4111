// Guest kbuild records on the real output of a guest make and a real record
// fetched from the guest (test/fixtures/guest-kbuild-6.1). The replay in a
// real guest is in test/e2e/vm-test.test.ts.
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import {
  blamesModuleSource,
  fetchRecordArgv,
  GUEST_MODULE_DIR,
  guestBuildPlan,
  guestReplayArgv,
  kdirFromMakeOutput,
  loadRecord,
  recordFromFetched,
  saveRecord,
} from '../../../scripts/lib/build/guest-kbuild.ts';
import { posixJoin } from '../../../scripts/lib/core/end.ts';
import { run } from '../../../scripts/lib/core/proc.ts';

const fx = (n: string): string => readFileSync(path.join(import.meta.dirname, '../../fixtures/guest-kbuild-6.1', n), 'utf8');
const KDIR = '/usr/src/linux-headers-6.1.0-56-amd64';
const tmp = (): string => mkdtempSync(path.join(os.tmpdir(), 'kmodvm-gk-'));

t.test('the kbuild tree comes from make\'s own "Entering directory" lines', async (t) => {
  t.equal(kdirFromMakeOutput(fx('make.stdout.txt'), GUEST_MODULE_DIR), KDIR);
  t.equal(kdirFromMakeOutput('  CC [M]  x.o\n', GUEST_MODULE_DIR), undefined, 'no such line: no record');
  t.equal(kdirFromMakeOutput(`make: Entering directory '${GUEST_MODULE_DIR}'\n`, GUEST_MODULE_DIR), undefined, "only the module's own directory: no record");
});

t.test('a record fetched from the guest becomes the four recorded commands, at guest paths', async (t) => {
  const r = await recordFromFetched(fx('record.tar.b64'), GUEST_MODULE_DIR, KDIR, os.tmpdir());
  t.ok(r);
  t.equal(r!.kdir, KDIR);
  t.equal(r!.plan.length, 4);
  t.match(
    r!.plan[0],
    /^gcc-12 .* -c -o \/root\/kmodvm\/kernel-module\/netlink_simple_intf\.o \/root\/kmodvm\/kernel-module\/netlink_simple_intf\.c +; \.\/tools\/objtool\/objtool /,
  );
  t.match(r!.plan[1], /^sed 's\/ko\$\/o\/'  \/root\/kmodvm\/kernel-module\/modules\.order \| scripts\/mod\/modpost /, 'make escaping undone');
  t.match(r!.plan[3], /^ld -r .* -o \/root\/kmodvm\/kernel-module\/netlink_simple_intf\.ko /);
  t.same(r!.tar, Buffer.from(fx('record.tar.b64'), 'base64'), 'the archive is kept whole, to extract in the next guest');
  t.equal(await recordFromFetched('bm90IGEgdGFy', GUEST_MODULE_DIR, KDIR, os.tmpdir()), undefined, 'not a tar: no record');
  t.equal(await recordFromFetched(fx('record.tar.b64'), '/elsewhere', KDIR, os.tmpdir()), undefined, 'recorded for another directory: no record');
});

t.test('records are saved whole, once, and a damaged one is not used', async (t) => {
  const d = path.join(tmp(), 'records', 'shape');
  const r = (await recordFromFetched(fx('record.tar.b64'), GUEST_MODULE_DIR, KDIR, os.tmpdir()))!;
  await saveRecord(d, r);
  t.same(readdirSync(path.dirname(d)), ['shape'], 'no temporary directory left behind');
  const back = await loadRecord(d);
  t.same(back?.plan, r.plan);
  t.same(back?.tar, r.tar);
  await saveRecord(d, { ...r, plan: ['echo other'] });
  t.same((await loadRecord(d))?.plan, r.plan, 'an existing record is not replaced');
  writeFileSync(path.join(d, 'meta.json'), '{"kdir": "/k", "plan": []}');
  t.equal(await loadRecord(d), undefined, 'an empty plan is no record');
  t.equal(await loadRecord(path.join(d, 'missing')), undefined);
});

t.test('the replay command, run by a real sh as sshd would: extract, cd, each command with sh -e, stop at the first failure', async (t) => {
  const base = tmp();
  const mod = path.join(base, 'mod');
  const kdir = path.join(base, 'kdir');
  mkdirSync(mod);
  mkdirSync(kdir);
  const src = tmp();
  writeFileSync(path.join(src, 'modules.order'), 'x.ko\n');
  const tar = await run('tar', ['-c', '-f', path.join(base, 'r.tar'), '-C', src, 'modules.order'], { timeoutMs: 10_000 });
  t.equal(tar.exitCode, 0);
  const plan = ["pwd > ran; echo \"$0 'q' $$1\" | awk '{ print $2 }' >> ran", 'false; echo after-false-in-one-command >> ran', 'echo never >> ran'];
  const r = await run('sh', ['-c', posixJoin(guestReplayArgv(mod, kdir, plan))], { timeoutMs: 10_000, input: readFileSync(path.join(base, 'r.tar')) });
  t.equal(r.exitCode, 1, "the failing command's status");
  t.ok(existsSync(path.join(mod, 'modules.order')), "the record's files land in the module directory");
  t.equal(
    readFileSync(path.join(kdir, 'ran'), 'utf8'),
    `${kdir}\n'q'\n`,
    'commands run in the kbuild tree, quotes and $ intact; sh -e stops inside a command and the loop after it',
  );
});

t.test("a failed replay is the user's error only when the compiler blames the module's own file", async (t) => {
  t.equal(blamesModuleSource(fx('replay-broken.stderr.txt'), GUEST_MODULE_DIR), true);
  t.equal(
    blamesModuleSource(fx('replay-broken.stderr.txt').split(GUEST_MODULE_DIR).join('/usr/src/linux-headers-6.1.0-56-common/include'), GUEST_MODULE_DIR),
    false,
    'an error in a kernel header: make decides',
  );
  t.equal(blamesModuleSource('sh: 1: ./tools/objtool/objtool: not found\n', GUEST_MODULE_DIR), false);
  t.equal(blamesModuleSource(`${GUEST_MODULE_DIR}/a.c:1:2: warning: unused\n`, GUEST_MODULE_DIR), false, 'warnings are not failures');
});

t.test("a record is looked up by the module's shape; exported symbols and --no-replay mean make", async (t) => {
  const records = tmp();
  const mod = tmp();
  writeFileSync(path.join(mod, 'Kbuild'), 'obj-m := m.o\n');
  writeFileSync(path.join(mod, 'm.c'), 'int x;\n');
  const p1 = await guestBuildPlan(records, mod, true);
  t.equal(p1.record, undefined, 'nothing recorded yet');
  await saveRecord(p1.recordDir, (await recordFromFetched(fx('record.tar.b64'), GUEST_MODULE_DIR, KDIR, os.tmpdir()))!);
  writeFileSync(path.join(mod, 'm.c'), 'int y;\n');
  const p2 = await guestBuildPlan(records, mod, true);
  t.equal(p2.recordDir, p1.recordDir, 'a .c edit keeps the shape');
  t.ok(p2.record, 'and finds the record');
  t.equal((await guestBuildPlan(records, mod, false)).record, undefined, '--no-replay: make');
  writeFileSync(path.join(mod, 'm.c'), 'int y;\nEXPORT_SYMBOL_GPL(y);\n');
  t.equal(
    (await guestBuildPlan(records, mod, true)).record,
    undefined,
    'a module that exports symbols: make (kbuild adds their CRCs outside the recorded commands)',
  );
  writeFileSync(path.join(mod, 'Kbuild'), 'obj-m := m.o\nccflags-y := -DX\n');
  t.not((await guestBuildPlan(records, mod, true)).recordDir, p1.recordDir, 'a Kbuild edit is a new shape');
  mkdirSync(path.join(mod, 'sub'));
  const before = (await guestBuildPlan(records, mod, true)).recordDir;
  writeFileSync(path.join(mod, 'sub', 'n.c'), '\n');
  t.not((await guestBuildPlan(records, mod, true)).recordDir, before, 'a new file in a subdirectory is a new shape');
});

t.test('the fetch command lists only what kbuild wrote about the build', async (t) => {
  const mod = tmp();
  for (const f of ['.m.o.cmd', 'm.mod', 'modules.order', 'm.c', 'm.o']) writeFileSync(path.join(mod, f), 'x\n');
  const r = await run('sh', ['-c', posixJoin(fetchRecordArgv(mod))], { timeoutMs: 10_000 });
  t.equal(r.exitCode, 0);
  const list = await run('tar', ['-t', '-f', '-'], { timeoutMs: 10_000, input: Buffer.from(r.stdout, 'base64') });
  t.same(list.stdout.trim().split('\n'), ['./.m.o.cmd', './m.mod', './modules.order']);
});

t.test('a record whose files name paths outside the module dir reads none of them (#24: /dev/zero was read to 2 GiB)', async (t) => {
  const secret = path.join(tmp(), 'host-secret.mod');
  writeFileSync(secret, 'secret.o\n');
  for (const [name, order] of [
    ['a device', '/dev/zero\n'],
    ['a host file', `${secret.replace(/\.mod$/, '.ko')}\n`],
    ['a relative escape', '../../../../../dev/zero\n'],
  ] as const) {
    const d = tmp();
    const m = path.join(d, GUEST_MODULE_DIR.slice(1));
    mkdirSync(m, { recursive: true });
    writeFileSync(path.join(m, 'modules.order'), order);
    const b64 = Buffer.from((await import('node:child_process')).execFileSync('tar', ['-c', '-f', '-', '-C', m, '.'])).toString('base64');
    t.equal(await recordFromFetched(b64, GUEST_MODULE_DIR, KDIR, os.tmpdir()), undefined, `${name}: no record`);
  }
});
