import t from 'tap';
import { stepSummary } from '../../../scripts/lib/verdict/github.ts';
import { toJUnit } from '../../../scripts/lib/verdict/junit.ts';
import { type CheckResult, type RunReport, verdictOf } from '../../../scripts/lib/verdict/model.ts';
import { summary } from '../../../scripts/lib/verdict/summary.ts';
import { toTap } from '../../../scripts/lib/verdict/tap.ts';

const checks: CheckResult[] = [
  { name: 'boot', ok: true, durationMs: 7080 },
  { name: 'app', ok: false, failure: 'app', durationMs: 60000, message: 'app timed out after 60 s', evidence: 'no reply <from> "kernel" & co' },
  { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: 'bug: BUG: TASK stack guard page was hit', evidence: 'BUG: ...\nCall Trace:' },
];

t.test('the summary says how the guest came up: booted, resumed, or booted and saved first', async (t) => {
  const r: RunReport = {
    ...verdictOf(checks.slice(0, 1)),
    runDir: '/r',
    accel: 'tcg',
    startedAt: '2026-11-28T00:00:00Z',
    durationMs: 3600,
    checks: checks.slice(0, 1),
    bootToSshMs: 1370,
  };
  t.match(summary(r), /^verdict: PASS in 3\.6 s, boot to SSH 1\.4 s, accel tcg/);
  t.match(summary({ ...r, bootHow: 'resumed' }), /, resume to SSH 1\.4 s,/);
  t.match(summary({ ...r, bootHow: 'saved, then resumed', bootToSshMs: 7100 }), /, boot, save and resume to SSH 7\.1 s,/);
  t.match(stepSummary({ ...r, bootHow: 'resumed' }), /resume to SSH 1\.4 s/);
});

t.test("a suite: each test a TAP subtest between the run's own checks; the worst class over all tests decides", async (t) => {
  const ok = (name: string): CheckResult => ({ name, ok: true, durationMs: 10 });
  const bad = (name: string, failure: CheckResult['failure'], evidence?: string): CheckResult => ({
    name,
    ok: false,
    failure,
    durationMs: 10,
    message: `${name} failed`,
    evidence,
  });
  const tests = [
    { name: 'a', ok: true, durationMs: 300, checks: [ok('insmod m'), ok('run')] },
    { name: 'b', ok: false, failure: 'transcript' as const, durationMs: 300, checks: [ok('insmod m'), bad('transcript', 'transcript', 'expected x')] },
    { name: 'c', ok: false, failure: 'timeout' as const, durationMs: 300, checks: [bad('run', 'timeout')], freshGuest: undefined },
  ];
  const r: RunReport = {
    verdict: 'fail',
    exitCode: 0,
    runDir: '/r',
    accel: 'tcg',
    startedAt: 'x',
    durationMs: 1000,
    checks: [ok('boot'), ok('upload'), ok('poweroff')],
    tests,
    testsAt: 2,
  };
  Object.assign(r, verdictOf([...r.checks, ...tests.flatMap((x) => x.checks)]));
  t.equal(r.failure, 'timeout', 'a hang outranks a transcript');
  t.equal(r.exitCode, 14);
  const tap = toTap(r);
  t.match(
    tap,
    /^TAP version 14\n1\.\.6\nok 1 boot \(0\.01 s\)\nok 2 upload \(0\.01 s\)\n# Subtest: a\n    1\.\.2\n    ok 1 insmod m \(0\.01 s\)\n    ok 2 run \(0\.01 s\)\nok 3 test a \(0\.30 s\)\n# Subtest: b\n/,
  );
  t.match(
    tap,
    /\n    not ok 2 transcript - transcript failed \(0\.01 s\)\n      ---\n      evidence: \|-\n        expected x\n      \.\.\.\nnot ok 4 test b - transcript \(0\.30 s\)\n/,
  );
  t.match(tap, /\nnot ok 5 test c - timeout \(0\.30 s\)\nok 6 poweroff \(0\.01 s\)\n$/);
  const junit = toJUnit(r);
  t.match(junit, /<testsuite name="vm:test" tests="6" failures="2"/);
  t.match(
    junit,
    /<testcase classname="kmodvm.vm:test" name="test b" time="0.300">\n\s+<failure type="transcript" message="transcript: transcript failed">transcript: transcript failed\nexpected x<\/failure>/,
  );
  t.match(summary(r), /tests: 1 of 3 passed \(failed: b, c\)/);
  t.match(stepSummary(r), /\| ❌ \| test c \| 0\.30 s \| run: run failed \|/);
});
