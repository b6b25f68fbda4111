import { readFileSync } from 'node:fs';
import t from 'tap';
import { kunit, kunitJudgement, suiteRelative, suiteRelativeText } from '../../../../scripts/lib/suite/checks/kunit.ts';
import { makeChecks } from '../../../../scripts/lib/suite/checks/registry.ts';
import { judgeTest } from '../../../../scripts/lib/suite/judge-test.ts';
import { loadRules } from '../../../../scripts/lib/verdict/splat.ts';

const fx = (f: string): string => readFileSync(new URL(`../../../fixtures/${f}`, import.meta.url), 'utf8');
// A real run's evidence of the test kunit:kunit (test/e2e/fixtures/kunit-suite on the debug kernel).
const saved = JSON.parse(fx('ktap/clampx.evidence.json'));

t.test('each KUnit case is a result; the failed one says its expectation at its place in the suite', async (t) => {
  const j = kunitJudgement(saved.evidence, 'kunit');
  t.equal(j.results.length, 7);
  t.same(
    j.results.filter((r) => !r.ok).map((r) => [r.name, r.failure, r.message]),
    [['kunit clampx_mid.clampx_mid_large', 'kunit', 'clampx_mid_large: EXPECTATION FAILED at kunit/clampx_test.c:31']],
  );
  const bad = j.results.find((r) => !r.ok);
  t.same(
    bad?.annotations?.map((a) => [a.file, a.line]),
    [['kunit/clampx_test.c', 31]],
  );
  t.match(bad?.evidence, /^clampx_mid_large: EXPECTATION FAILED at kunit\/clampx_test\.c:31\nExpected/);
  t.match(j.results.find((r) => r.name === 'kunit clampx.clampx_not_here')?.message, /^skipped: no hardware clamp/);
});

t.test('modules that loaded and ran no suite are bad input, said as such; a failed load is its own step', async (t) => {
  const none = kunitJudgement({ ...saved.evidence, kernelLog: '[    1.0] hello\n' }, 'kunit');
  t.same(
    none.results.map((r) => [r.name, r.failure]),
    [['kunit', 'usage']],
  );
  t.match(none.results[0].message, /kunit: kunit: its modules loaded and ran no KUnit suite/);
  const failedLoad = { ...saved.evidence, kernelLog: '', loads: [{ ...saved.evidence.loads[0], ok: false }] };
  t.same(kunitJudgement(failedLoad, 'kunit').results, []);
});

t.test("in a run: only the kunit: test is judged by it, and KUnit's taint N is expected there alone", async (t) => {
  const rules = loadRules([new URL('../../../../rules/splat.json', import.meta.url).pathname]);
  const checks = makeChecks({ choice: { memcheck: false, debugKernel: true, kunit: true }, settings: {} });
  const inKunit = judgeTest(saved.evidence, { exitCode: 0, loadsHere: true, kunit: 'kunit' }, rules, checks);
  t.equal(inKunit.checks.find((c) => c.name === 'taint')?.ok, true, 'N (TAINT_TEST) in the kunit test');
  t.equal(inKunit.checks.filter((c) => c.name.startsWith('kunit ')).length, 7);
  const elsewhere = judgeTest(saved.evidence, { exitCode: 0, loadsHere: true }, rules, checks);
  t.equal(elsewhere.checks.filter((c) => c.name.startsWith('kunit')).length, 0);
  t.equal(elsewhere.checks.find((c) => c.name === 'taint')?.ok, false, 'N in another test is a new taint');
  t.equal(kunit.wanted({ memcheck: false, debugKernel: false }), false);
});

t.test('paths the build wrote are named by their place in the suite', async (t) => {
  t.equal(suiteRelative('/root/.cache/kmodvm/host-builds/7ec7aed4faaf198f/tree/kunit/x.c'), 'kunit/x.c');
  t.equal(suiteRelative('/root/kmodvm/kunit/x.c'), 'kunit/x.c');
  t.equal(suiteRelative('lib/kunit/test.c'), 'lib/kunit/test.c');
  t.equal(suiteRelativeText('at /home/u/.cache/kmodvm/host-builds/0123456789abcdef/tree/a/b.c:3 and /root/kmodvm/c.c'), 'at a/b.c:3 and c.c');
});
