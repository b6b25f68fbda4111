// Flake hunting (issue 26.5): --repeat N makes N runs of each selected test,
// --shuffle[=SEED] puts all the runs in a seeded random order, and after the
// run each test's pass rate is counted; a test that both passed and failed
// is flaky, which the report says in a check of its own.
import { type CheckResult, type PassRate, type TestReport, worstOf } from '../verdict/model.ts';
import type { SelectedTest } from './types.ts';

/** The order of a run: how many runs of each test, and the seed when shuffled. */
export interface RunOrder {
  repeat: number;
  seed?: number;
}

/** The seed --shuffle asked for: its digits, or a random one for a bare --shuffle; none without it. */
export function shuffleSeed(shuffle: string, random: () => number = Math.random): number | undefined {
  if (!shuffle) return undefined;
  return shuffle === 'random' ? Math.floor(random() * 2 ** 31) : Number(shuffle) >>> 0;
}

/** mulberry32: a small seeded generator, so one seed gives one order on every machine. */
export function seeded(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Fisher-Yates with the seeded generator; the input is left as it was. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  const out = [...items];
  const next = seeded(seed);
  for (let k = out.length - 1; k > 0; k--) {
    const j = Math.floor(next() * (k + 1));
    [out[k], out[j]] = [out[j], out[k]];
  }
  return out;
}

/** The name of run k of a repeated test: `name#k`; a test run once keeps its name. */
export const runName = (name: string, k: number, of: number): string => (of > 1 ? `${name}#${k}` : name);

/** Each selected test N times, in the suite's order (each test's runs together), then shuffled when there is a seed. */
export function expandRuns(tests: readonly SelectedTest[], o: RunOrder): SelectedTest[] {
  const runs = tests.flatMap((t) => Array.from({ length: o.repeat }, (_, k) => (o.repeat > 1 ? { ...t, run: { k: k + 1, of: o.repeat } } : t)));
  return o.seed === undefined ? runs : shuffled(runs, o.seed);
}

/** Each test's runs counted, in the order the tests first ran. */
export function passRates(tests: readonly Pick<TestReport, 'name' | 'ok' | 'failure' | 'base'>[]): PassRate[] {
  const by = new Map<string, Pick<TestReport, 'ok' | 'failure'>[]>();
  for (const t of tests) {
    const k = t.base ?? t.name;
    by.set(k, [...(by.get(k) ?? []), t]);
  }
  return [...by].map(([name, rs]) => {
    const passed = rs.filter((r) => r.ok).length;
    const failure = worstOf(rs.filter((r) => !r.ok).map((r) => ({ name, ok: false, failure: r.failure, durationMs: 0 })));
    return { name, runs: rs.length, passed, flaky: passed > 0 && passed < rs.length, failure };
  });
}

/** "7 of 10 runs passed (70 %)". */
export const rateWords = (r: PassRate): string => `${r.passed} of ${r.runs} runs passed (${Math.round((100 * r.passed) / r.runs)} %)`;

/** The repeat's own check: each test's pass rate; it fails when a test is flaky, with the class of the flaky runs' failures. */
export function flakyCheck(rates: readonly PassRate[], o: { seed?: number; stoppedAt?: string }): CheckResult {
  const flaky = rates.filter((r) => r.flaky);
  const lines = rates.map((r) => `${r.name}: ${rateWords(r)}${r.flaky ? ', flaky' : ''}`);
  if (o.seed !== undefined) lines.push(`order: shuffled with seed ${o.seed} (--shuffle=${o.seed} runs it again)`);
  if (o.stoppedAt) lines.push(`stopped at the first failure: ${o.stoppedAt}`);
  const message = flaky.length
    ? `flaky: ${flaky.map((r) => `${r.name} (${r.passed}/${r.runs})`).join(', ')}`
    : rates.map((r) => `${r.name} ${r.passed}/${r.runs}`).join(', ');
  return {
    name: 'repeat',
    ok: flaky.length === 0,
    failure: flaky.length ? (worstOf(flaky.map((r) => ({ name: r.name, ok: false, failure: r.failure, durationMs: 0 }))) ?? 'app') : undefined,
    durationMs: 0,
    message,
    evidence: lines.join('\n'),
  };
}
