// One test's verdict from recorded guest answers (test/fixtures/suite-6.1,
// test/fixtures/splats): the state reads, the command's output, the log.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import type { ExecResult } from '../../../scripts/lib/guest/ssh.ts';
import type { StepRecord } from '../../../scripts/lib/guest/steps.ts';
import type { TestEvidence } from '../../../scripts/lib/suite/checks/check.ts';
import { judgeTest } from '../../../scripts/lib/suite/judge-test.ts';
import { parseStateAfter, parseStateBefore } from '../../../scripts/lib/suite/test-plan.ts';
import { loadRules } from '../../../scripts/lib/verdict/splat.ts';
import { parseTranscript } from '../../../scripts/lib/verdict/transcript.ts';
import { execResult } from '../../helpers/exec-result.ts';

const root = new URL('../../../', import.meta.url).pathname;
const fx = (f: string): string => readFileSync(path.join(root, 'test/fixtures', f), 'utf8');
const rules = loadRules([path.join(root, 'rules/splat.json')]);
const res = (o: Partial<ExecResult> = {}): ExecResult => execResult({ durationMs: 5, ...o });
const rec = (name: string, o: Partial<ExecResult> = {}, failure: StepRecord['failure'] = 'load'): StepRecord => {
  const r = res(o);
  return r.exitCode === 0 && !r.timedOut
    ? { name, ok: true, result: r }
    : { name, ok: false, failure: r.timedOut ? 'timeout' : failure, result: r, message: `${name} ${r.reason}` };
};
const transcript = {
  parsed: parseTranscript(fx('../e2e/fixtures/foreign-suite/expected/ctl-read.transcript'), 'ctl-read.transcript'),
  file: 'ctl-read.transcript',
};
const before = parseStateBefore(fx('suite-6.1/ctl-read.state-before.stdout'));
const after = parseStateAfter(fx('suite-6.1/ctl-read.state-after.stdout'));
const evidence = (o: Partial<TestEvidence> = {}): TestEvidence => ({
  loads: [rec('insmod bebop_core'), rec('insmod bebop_user')],
  run: rec('run', { stdout: fx('suite-6.1/ctl-read.run.stdout') }, 'app'),
  unloads: [rec('rmmod bebop_user'), rec('rmmod bebop_core')],
  taintBefore: before.taint,
  taintAfter: after.taint,
  pid: after.pid,
  kernelLog: after.dmesg,
  serial: '',
  ...o,
});
const names = (checks: { name: string; ok: boolean }[]): string[] => checks.map((c) => `${c.ok ? 'ok' : 'FAIL'} ${c.name}`);

t.test("the recorded state reads: PID, taint, the test's log", async (t) => {
  t.equal(before.taint, 0, 'no module before the first test');
  t.equal(after.pid, '156');
  t.equal(after.taint, 12288, 'O and E after');
  t.match(after.dmesg, /^\[\s*[\d.]+\] bebop_core: loading out-of-tree module taints kernel\.$/m);
});

t.test('a recorded passing test', async (t) => {
  const j = judgeTest(evidence(), { exitCode: 0, transcript, loadsHere: true }, rules);
  t.same(names(j.checks), [
    'ok insmod bebop_core',
    'ok insmod bebop_user',
    'ok run',
    'ok rmmod bebop_user',
    'ok rmmod bebop_core',
    'ok transcript',
    'ok taint',
    'ok no-splat',
  ]);
  t.equal(j.captures?.pid, '157', "the app's PID, as the kernel logged it");
  t.equal(j.firstLoad, true);
  t.equal(j.untrusted, undefined);
});

t.test('the same output, a wrong expectation: each check fails in its own class', async (t) => {
  const wrongExit = judgeTest(evidence(), { exitCode: 2, transcript, loadsHere: true }, rules);
  t.match(
    wrongExit.checks.find((c) => c.name === 'run'),
    { ok: false, failure: 'app', message: 'exited 0, expected 2' },
  );
  const other = { parsed: parseTranscript('[app]\npid {{pid:int}}: value 44 name bebop\n'), file: 'x' };
  const tr = judgeTest(evidence(), { exitCode: 0, transcript: other, loadsHere: true }, rules).checks.find((c) => c.name === 'transcript');
  t.match(tr, { ok: false, failure: 'transcript', annotations: [{ file: 'x', line: 2 }] });
  t.match(tr?.evidence, /value 43 name bebop/);
});

t.test('a hang, a splat, a new taint flag, a failed rmmod: the next test gets a fresh guest', async (t) => {
  const hung = judgeTest(
    evidence({
      run: rec('run', { exitCode: undefined, timedOut: true, reason: 'timed out after 30 s', stdout: 'half' }, 'app'),
      hangEvidence: 'sysrq w/t task dump',
    }),
    { exitCode: 0, transcript, loadsHere: true },
    rules,
  );
  t.match(
    hung.checks.find((c) => c.name === 'run'),
    { failure: 'timeout', evidence: /half[\s\S]*sysrq w\/t task dump/ },
  );
  t.notOk(
    hung.checks.some((c) => c.name === 'transcript'),
    'no transcript of a command that did not finish',
  );
  t.equal(hung.untrusted, 'a step hung');
  const oops = judgeTest(evidence({ kernelLog: after.dmesg + fx('splats/splat_null_deref.dmesg.log') }), { exitCode: 0, loadsHere: true }, rules);
  t.match(
    oops.checks.find((c) => c.name === 'no-splat'),
    { ok: false, failure: 'splat' },
  );
  t.match(oops.untrusted, /BUG: kernel NULL pointer dereference/);
  const tainted = judgeTest(evidence({ taintAfter: 12288 | 512 }), { exitCode: 0, loadsHere: true }, rules);
  t.match(
    tainted.checks.find((c) => c.name === 'taint'),
    { ok: false, failure: 'splat', message: 'new taint flags W' },
  );
  const stuck = judgeTest(
    evidence({ unloads: [rec('rmmod bebop_user', { exitCode: 1, reason: 'exited 1', stderr: 'rmmod: ERROR: Module bebop_user is in use' })] }),
    { exitCode: 0, loadsHere: true },
    rules,
  );
  t.equal(stuck.untrusted, 'rmmod bebop_user failed');
});

t.test("a failed insmod: no command run, its evidence is the test's kernel log", async (t) => {
  const j = judgeTest(
    evidence({
      loads: [rec('insmod bebop_core', { exitCode: 1, reason: 'exited 1', stderr: 'insmod: ERROR: could not insert module: Unknown symbol in module' })],
      run: undefined,
      unloads: [],
    }),
    { exitCode: 0, transcript, loadsHere: true },
    rules,
  );
  t.same(names(j.checks), ['FAIL insmod bebop_core', 'ok taint', 'ok no-splat']);
  t.match(j.checks[0].evidence, /Unknown symbol in module[\s\S]*kernel log of this test/);
});

t.test('with load: once the first-load lines are never expected of a test', async (t) => {
  t.equal(judgeTest(evidence({ loads: [], unloads: [] }), { exitCode: 0, loadsHere: false }, rules).firstLoad, false);
});

t.test('a report with source lines: the line in the message and the evidence, and an annotation at it', async (t) => {
  // The debug kernel's report of the planted use-after-free (test/fixtures/planted/6.1-debug/), with the source line the .ko gave.
  const log = fx('planted/6.1-debug/use-after-free.dmesg.log');
  const frame = /in (plant_use_after_free\+0x[0-9a-f]+\/0x[0-9a-f]+ \[planted\])/.exec(log)![1];
  const sources = { [frame]: { file: '/src/planted/planted.c', rel: 'planted/planted.c', line: 59 } };
  const j = judgeTest(evidence({ kernelLog: log, sources }), { exitCode: 0, loadsHere: true }, rules);
  const splat = j.checks.find((c) => c.name === 'no-splat')!;
  t.match(splat.message, /^kasan: BUG: KASAN: use-after-free in plant_use_after_free.* \(planted\/planted\.c:59\)$/);
  t.match(splat.evidence, new RegExp(`\\nsource: planted/planted\\.c:59 \\(${frame.replace(/[[\]+.]/g, '\\$&')}\\)$`));
  t.same(splat.annotations, [{ file: '/src/planted/planted.c', line: 59, message: splat.message!.replace(' (planted/planted.c:59)', '') }]);
  t.ok(j.untrusted, 'a use after free leaves the kernel untrusted');
});

t.test('a leak found at rmmod fails the test but leaves the kernel trusted', async (t) => {
  const j = judgeTest(evidence({ kernelLog: fx('planted/6.1-memcheck/leak.dmesg.log') }), { exitCode: 0, loadsHere: true }, rules);
  const splat = j.checks.find((c) => c.name === 'no-splat')!;
  t.equal(splat.failure, 'splat');
  t.match(
    splat.message,
    /^memcheck-leak: kmodvm-memcheck: leak: 1 object of kmalloc-128 still allocated after rmmod planted, allocated at plant_leak\+0x1b\/0x3b \[planted\]/,
  );
  t.equal(j.untrusted, undefined);
});

t.test(
  'a kernel that does not check module signatures (the debug kernel) never prints the signature line: the demo transcript still passes there',
  async (t) => {
    // The netlink demo on --kernel debian-12-debug (test/fixtures/debug-kernel/): taint 4096 after (O, no E).
    const transcript = { parsed: parseTranscript(fx('../expected/netlink.transcript'), 'netlink.transcript'), file: 'netlink.transcript' };
    const e = evidence({
      loads: [rec('insmod netlink_simple_intf')],
      unloads: [rec('rmmod netlink_simple_intf')],
      run: rec('run', { stdout: fx('debug-kernel/netlink.stdout') }, 'app'),
      kernelLog: fx('debug-kernel/netlink.dmesg.log'),
      taintBefore: 0,
      taintAfter: 4096,
    });
    const ok = judgeTest(e, { exitCode: 0, transcript, loadsHere: true }, rules);
    t.ok(ok.checks.find((c) => c.name === 'transcript')?.ok, 'transcript matches without the signature line');
    const signed = judgeTest({ ...e, taintAfter: 4096 | 8192 }, { exitCode: 0, transcript, loadsHere: true }, rules);
    t.notOk(signed.checks.find((c) => c.name === 'transcript')?.ok, 'with taint E the kernel checked signatures, and the line is required');
  },
);
