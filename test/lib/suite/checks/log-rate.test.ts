import { readFileSync } from 'node:fs';
import t from 'tap';
import { busiestSecond, logRate, logRateResult, logTimes } from '../../../../scripts/lib/suite/checks/log-rate.ts';

const fx = (f: string): string => readFileSync(new URL(`../../../fixtures/${f}`, import.meta.url), 'utf8');

t.test('a real flood (300 lines in 0.07 s) is over a limit of 200 lines a second, and names the second', async (t) => {
  const log = fx('log-rate/kmsg-flood-300.dmesg.log');
  t.equal(logTimes(log).length, 300);
  const r = logRateResult(log, 200);
  t.equal(r.ok, false);
  t.equal(r.failure, 'app');
  t.match(r.message, /300 lines in one second, over the limit of 200/);
  t.match(r.evidence, /from \[22\.806346\]/);
  t.equal(logRateResult(log, 300).ok, true, 'at the limit is within it');
});

t.test("a real test's log (the planted leak's load and unload) is well under the limit; a boot log is not a test's", async (t) => {
  const r = logRateResult(fx('planted/6.1-memcheck/leak.dmesg.log'), 50);
  t.equal(r.ok, true);
  t.match(r.message, /at most \d+ lines\/s \(limit 50\)/);
});

t.test('the busiest second is a sliding window, not a clock second', async (t) => {
  t.same(busiestSecond([0.9, 1.1, 1.2, 2.5]), { lines: 3, at: 0.9 });
  t.same(busiestSecond([]), { lines: 0, at: 0 });
  t.same(busiestSecond([1, 2, 3]), { lines: 1, at: 1 }, 'exactly a second apart: different windows');
});

t.test('as a check: judged on the test kernel log, with the suite setting', async (t) => {
  const k = logRate.create({ choice: { memcheck: false, debugKernel: false }, setting: 100 });
  const j = k.judge?.({ loads: [], unloads: [], kernelLog: fx('log-rate/kmsg-flood-300.dmesg.log'), serial: '' }, {} as never);
  t.equal(j?.results[0].name, 'log-rate');
  t.equal(j?.results[0].ok, false);
  t.equal(j?.untrusted, undefined, 'a noisy module leaves the kernel trusted');
  t.equal(logRate.wanted({ memcheck: true, debugKernel: true }), false, 'only a setting turns it on');
});
