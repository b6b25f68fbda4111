import t from 'tap';
import { toJUnit } from '../../../scripts/lib/verdict/junit.ts';
import { type CheckResult, type RunReport, verdictOf } from '../../../scripts/lib/verdict/model.ts';
import { summary } from '../../../scripts/lib/verdict/summary.ts';

const checks: CheckResult[] = [
  { name: 'boot', ok: true, durationMs: 7080 },
  { name: 'app', ok: false, failure: 'app', durationMs: 60000, message: 'app timed out after 60 s', evidence: 'no reply <from> "kernel" & co' },
  { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: 'bug: BUG: TASK stack guard page was hit', evidence: 'BUG: ...\nCall Trace:' },
];

t.test('junit.xml is well-formed XML whatever the guest printed (#24: U+FFFE and U+FFFF broke it), checked by a real parser', async (t) => {
  const { SaxesParser } = await import('saxes');
  const nasty = `a\u0000b\u0007c\u000bd\uFFFEe\uFFFFf\uD800g\uDFFFh <&>"' ü 😀 \t\n\r end`;
  const checks: CheckResult[] = [{ name: `run ${nasty}`, ok: false, failure: 'app', durationMs: 1, message: nasty, evidence: nasty }];
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

t.test('JUnit: a testcase per check, failures escaped', async (t) => {
  const r: RunReport = { ...verdictOf(checks), runDir: '/r', accel: 'tcg', startedAt: '2026-11-28T00:00:00Z', durationMs: 67080, checks };
  const x = toJUnit(r);
  t.match(x, /<testsuite name="vm:test" tests="3" failures="2"/);
  t.match(x, /<testcase classname="kmodvm.vm:test" name="boot" time="7.080"\/>/);
  t.match(x, /<failure type="app" message="app timed out after 60 s">no reply &lt;from&gt; &quot;kernel&quot; &amp; co<\/failure>/);
  t.match(summary(r), /^verdict: FAIL \(splat, exit 13\)/);
  t.match(summary(r), /run directory: \/r$/);
});

t.test('JUnit: each KUnit case of a test is a testcase of its own, named under its test, besides the folded test', async (t) => {
  const { readFileSync } = await import('node:fs');
  const { kunitJudgement } = await import('../../../scripts/lib/suite/checks/kunit.ts');
  const { testReport } = await import('../../../scripts/lib/verdict/model.ts');
  // A real run's evidence of the kunit:kunit test (test/e2e/fixtures/kunit-suite).
  const saved = JSON.parse(readFileSync(new URL('../../fixtures/ktap/clampx.evidence.json', import.meta.url), 'utf8'));
  const test = testReport('kunit:kunit', kunitJudgement(saved.evidence, 'kunit').results, 7000);
  const r: RunReport = { ...verdictOf([checks[0]]), runDir: '/r', accel: 'tcg', startedAt: 'x', durationMs: 1, checks: [checks[0]], tests: [test], testsAt: 1 };
  const x = toJUnit(r);
  t.match(x, /<testsuite name="vm:test" tests="9" failures="2"/, 'boot, the folded test and its 7 cases; the test and its case failed');
  t.match(x, /name="kunit:kunit: kunit clampx\.clampx_inside" time="0\.000"\/>/);
  t.match(
    x,
    /name="kunit:kunit: kunit clampx_mid\.clampx_mid_large" time="0\.000">\n {6}<failure type="kunit" message="clampx_mid_large: EXPECTATION FAILED at kunit\/clampx_test\.c:31">/,
  );
});
