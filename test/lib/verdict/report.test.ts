import t from 'tap';
import { githubAnnotations, stepSummary, summary, toJUnit, toTap, verdictOf, type Check, type RunReport } from '../../../scripts/lib/verdict/report.ts';

const checks: Check[] = [
  { name: 'boot', ok: true, durationMs: 7080 },
  { name: 'app', ok: false, failure: 'app', durationMs: 60000, message: 'app timed out after 60 s', evidence: 'no reply <from> "kernel" & co' },
  { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: 'bug: BUG: TASK stack guard page was hit', evidence: 'BUG: ...\nCall Trace:' },
];

t.test('a splat outranks the step it broke; otherwise the first failure decides; none is a pass', async (t) => {
  t.same(verdictOf(checks), { verdict: 'fail', failure: 'splat', exitCode: 13 });
  t.same(verdictOf(checks.slice(0, 2)), { verdict: 'fail', failure: 'app', exitCode: 12 });
  t.same(verdictOf(checks.slice(0, 1)), { verdict: 'pass', exitCode: 0 });
});

t.test('TAP: one point per check, evidence in a YAML block', async (t) => {
  const tap = toTap(checks);
  t.match(tap, /^TAP version 14\n1\.\.3\nok 1 boot \(7\.08 s\)\nnot ok 2 app - app timed out after 60 s \(60\.00 s\)\n  ---\n  evidence: \|-\n    no reply/);
});

t.test('JUnit: a testcase per check, failures escaped', async (t) => {
  const r: RunReport = { ...verdictOf(checks), runDir: '/r', accel: 'tcg', startedAt: '2026-11-28T00:00:00Z', durationMs: 67080, checks };
  const x = toJUnit(r);
  t.match(x, /<testsuite name="vm:test" tests="3" failures="2"/);
  t.match(x, /<testcase classname="kmodvm.vm:test" name="boot" time="7.080"\/>/);
  t.match(x, /<failure type="app" message="app timed out after 60 s">no reply &lt;from&gt; &quot;kernel&quot; &amp; co<\/failure>/);
  t.match(summary(r), /^verdict: FAIL \(splat, exit 13\)/);
  t.match(summary(r), /run directory: \/r$/);
});

t.test('GitHub annotations: file and line for compiler errors, escaped; a plain error otherwise', async (t) => {
  const c: Check[] = [
    {
      name: 'build-module',
      ok: false,
      failure: 'build',
      durationMs: 1,
      message: 'make exited 2',
      annotations: [{ file: '/repo/kernel-module/a.c', line: 168, col: 9, message: "error: 'nlsok' undeclared, 100%" }],
    },
    { name: 'app', ok: false, failure: 'app', durationMs: 1, message: 'app exited 1', evidence: 'line1\nline2' },
    { name: 'boot', ok: true, durationMs: 1 },
  ];
  t.same(githubAnnotations(c, '/repo'), [
    "::error file=kernel-module/a.c,line=168,col=9,title=kmodvm build-module::error: 'nlsok' undeclared, 100%25",
    '::error title=kmodvm app::app exited 1%0Aline1%0Aline2',
  ]);
});

t.test('the step summary holds the verdict, a row per check and the evidence', async (t) => {
  const r: RunReport = { ...verdictOf(checks), runDir: '/r', accel: 'tcg', kernelVersion: '6.1.0-56-amd64', startedAt: 'x', durationMs: 1000, checks };
  const md = stepSummary(r);
  t.match(md, /^## kmodvm: ❌ FAIL \(splat, exit 13\)/);
  t.match(md, /\| ✅ \| boot \| 7\.08 s \|/);
  t.match(md, /### no-splat\n\n```diff\nBUG: \.\.\.\nCall Trace:\n```/);
});

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
  const ok = (name: string): Check => ({ name, ok: true, durationMs: 10 });
  const bad = (name: string, failure: Check['failure'], evidence?: string): Check => ({
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

t.test('FAILURE_RANK names every class once', async (t) => {
  const { FAILURE_RANK } = await import('../../../scripts/lib/verdict/report.ts');
  const { EXIT_CODES } = await import('../../../scripts/lib/core/errors.ts');
  t.same([...FAILURE_RANK].sort(), Object.keys(EXIT_CODES).sort());
});

t.test('junit.xml is well-formed XML whatever the guest printed (#24: U+FFFE and U+FFFF broke it), checked by a real parser', async (t) => {
  const { SaxesParser } = await import('saxes');
  const nasty = `a\u0000b\u0007c\u000bd\uFFFEe\uFFFFf\uD800g\uDFFFh <&>"' ü 😀 \t\n\r end`;
  const checks: Check[] = [{ name: `run ${nasty}`, ok: false, failure: 'app', durationMs: 1, message: nasty, evidence: nasty }];
  const r: RunReport = { ...verdictOf(checks), runDir: '/r', accel: 'tcg', startedAt: 'x', durationMs: 1, checks };
  const junit = toJUnit(r);
  const errors: string[] = [];
  const p = new SaxesParser();
  p.on('error', (e) => errors.push(e.message));
  p.write(junit).close();
  t.same(errors, [], 'no parse error');
  t.match(junit, /ü 😀/, 'the characters XML allows stay');
  t.match(junit, /&lt;&amp;&gt;&quot;&apos;/);
});

t.test("the step summary's code fence is longer than any backtick run in the evidence, and guest text stays in its table cell (#24 Low 11)", async (t) => {
  const { codeFence } = await import('../../../scripts/lib/verdict/report.ts');
  t.equal(codeFence('plain'), '```');
  t.equal(codeFence('a ``` b ````` c'), '``````');
  const evidence = '```\n# Injected heading\n[click](https://example.invalid)';
  const checks: Check[] = [{ name: 'run', ok: false, failure: 'app', durationMs: 1, message: 'line one\n| col | break', evidence }];
  const r: RunReport = { ...verdictOf(checks), runDir: '/r', accel: 'tcg', startedAt: 'x', durationMs: 1, checks };
  const md = stepSummary(r);
  t.match(md, /\n````diff\n```\n# Injected heading\n\[click\]\(https:\/\/example\.invalid\)\n````\n/, 'the evidence stays inside a longer fence');
  t.match(md, /\| run \| 0\.00 s \| line one \\\| col \\\| break \|/, 'one table row');
});
