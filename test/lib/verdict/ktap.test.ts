import { readFileSync } from 'node:fs';
import t from 'tap';
import { missingCases, parseKtap } from '../../../scripts/lib/verdict/ktap.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/${f}`, import.meta.url), 'utf8');
// A real 6.1 kernel log: clampx_test's two suites, run as the module loaded (kmodvm's debug kernel, KUnit built in).
const log = fx('ktap/clampx.dmesg.log');

t.test("a real module load's KTAP: two suites, their cases, a skip, a failure with its place", async (t) => {
  const suites = parseKtap(log);
  t.same(
    suites.map((s) => [s.name, s.planned, s.ok, s.cases.length]),
    [
      ['clampx', 4, true, 4],
      ['clampx_mid', 3, false, 3],
    ],
  );
  const [a, b] = suites;
  t.same(
    a.cases.map((c) => [c.name, c.ok, c.skipped]),
    [
      ['clampx_inside', true, undefined],
      ['clampx_below_above', true, undefined],
      ['clampx_bad_range', true, undefined],
      ['clampx_not_here', true, 'no hardware clamp on this machine'],
    ],
  );
  const failed = b.cases.find((c) => !c.ok);
  t.equal(failed?.name, 'clampx_mid_large');
  t.same(failed?.at, { file: '/root/.cache/kmodvm/host-builds/7ec7aed4faaf198f/tree/kunit/clampx_test.c', line: 31 });
  t.match(failed?.message.join('\n'), /Expected clampx_mid\(.*\) == .*, but\n.*== -2\n.*== 2147483646/);
  t.notOk(
    failed?.message.some((m) => /pass:\d/.test(m)),
    "KUnit's summary lines are not a case's message",
  );
});

t.test("a parameterised case is one case: its parameters' results, a level in, are not the suite's", async (t) => {
  const mid = parseKtap(log)[1];
  t.same(
    mid.cases.map((c) => [c.name, c.ok]),
    [
      ['clampx_mid_small', true],
      ['clampx_mid_large', false],
      ['clampx_mid_table', true],
    ],
  );
  t.same(mid.cases[2].message, [], 'a passing case carries no message');
});

t.test('a log cut inside a suite (the module crashed mid-suite) leaves the planned cases missing, and no result', async (t) => {
  const cut = log.split('\n').slice(0, log.split('\n').findIndex((l) => l.includes('ok 1 clampx_mid_small')) + 1);
  const mid = parseKtap(cut.join('\n'))[1];
  t.equal(mid.ok, undefined);
  t.equal(missingCases(mid), 2);
  t.equal(missingCases(parseKtap(log)[0]), 0);
});

t.test('a log without KUnit, and lines that only look like results outside a suite, give nothing', async (t) => {
  t.same(parseKtap(fx('step-marks/order-unused.evidence.json')), []);
  t.same(parseKtap('[    1.0] ok 1 something\n[    1.1] not ok 2 other\n'), []);
});
