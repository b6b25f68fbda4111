import t from 'tap';
import type { SuiteTest } from '../../../scripts/lib/suite/load.ts';
import { expandRuns, flakyCheck, passRates, rateWords, runName, shuffled, shuffleSeed } from '../../../scripts/lib/suite/repeat.ts';

const sel = (name: string) => ({ test: { name, run: 'true', exitCode: 0 } as SuiteTest });

t.test("--repeat N: N runs of each test, each test's runs together in the suite's order; run once keeps the name", async (t) => {
  const runs = expandRuns([sel('a'), sel('b')], { repeat: 3 });
  t.same(
    runs.map((r) => runName(r.test.name, r.run!.k, r.run!.of)),
    ['a#1', 'a#2', 'a#3', 'b#1', 'b#2', 'b#3'],
  );
  const once = expandRuns([sel('a')], { repeat: 1 });
  t.equal(once[0].run, undefined);
  t.equal(runName('a', 1, 1), 'a');
});

t.test('--shuffle=SEED: one seed gives one order, every time; another seed another; every run stays', async (t) => {
  const items = Array.from({ length: 20 }, (_, k) => k);
  t.same(shuffled(items, 42), shuffled(items, 42));
  t.not(shuffled(items, 42).join(','), shuffled(items, 43).join(','));
  t.not(shuffled(items, 42).join(','), items.join(','), 'the order changed');
  t.same(
    [...shuffled(items, 42)].sort((x, y) => x - y),
    items,
  );
  t.same(
    items,
    Array.from({ length: 20 }, (_, k) => k),
    'the input is left as it was',
  );
  const runs = expandRuns([sel('a'), sel('b')], { repeat: 5, seed: 7 });
  t.equal(runs.length, 10);
  t.equal(runs.filter((r) => r.test.name === 'a').length, 5);
});

t.test('the seed: digits as given, a bare --shuffle a random one, none without it', async (t) => {
  t.equal(shuffleSeed(''), undefined);
  t.equal(shuffleSeed('1234'), 1234);
  t.equal(
    shuffleSeed('random', () => 0.5),
    2 ** 30,
  );
});

t.test("pass rates: a test that both passed and failed is flaky, and the repeat check fails with its runs' class", async (t) => {
  const reports = [
    { name: 'a#1', base: 'a', ok: true },
    { name: 'b#1', base: 'b', ok: false, failure: 'transcript' as const },
    { name: 'a#2', base: 'a', ok: false, failure: 'splat' as const },
    { name: 'b#2', base: 'b', ok: false, failure: 'transcript' as const },
    { name: 'a#3', base: 'a', ok: true },
    { name: 'c#1', base: 'c', ok: true },
  ];
  const rates = passRates(reports);
  t.same(
    rates.map((r) => [r.name, r.passed, r.runs, r.flaky]),
    [
      ['a', 2, 3, true],
      ['b', 0, 2, false],
      ['c', 1, 1, false],
    ],
  );
  t.equal(rateWords(rates[0]), '2 of 3 runs passed (67 %)');
  const k = flakyCheck(rates, { seed: 9, stoppedAt: undefined });
  t.equal(k.ok, false);
  t.equal(k.failure, 'splat', 'the flaky runs failed with a splat');
  t.match(k.message, /^flaky: a \(2\/3\)$/);
  t.match(k.evidence, /b: 0 of 2 runs passed \(0 %\)\n/);
  t.match(k.evidence, /--shuffle=9/);
  const steady = flakyCheck(passRates(reports.filter((r) => r.base !== 'a')), {});
  t.equal(steady.ok, true, 'a test that fails every time is not flaky: its runs fail the run, not this check');
  t.equal(steady.message, 'b 0/2, c 1/1');
});
