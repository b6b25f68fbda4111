// An example check, in one file (README "Layout" walks it): a test whose
// kernel log grows faster than N lines in any one second fails, as a module
// that floods the log (a printk in a hot path, an interrupt storm) would.
// Turned on by the suite: `checks: {log_rate: 200}`.
import { z } from 'zod';
import type { CheckResult } from '../../verdict/model.ts';
import type { CheckRoom } from './check.ts';

/** The printk timestamps of a kernel log, in seconds, in order (lines without one are left out). */
export function logTimes(log: string): number[] {
  const out: number[] = [];
  for (const m of log.matchAll(/^\s*(?:<\d+>)?\[\s*(\d+\.\d+)\]/gm)) out.push(Number(m[1]));
  return out;
}

/** The most lines in any one-second window, and where that window starts: two pointers over the sorted times, linear. */
export function busiestSecond(times: readonly number[]): { lines: number; at: number } {
  let best = { lines: 0, at: 0 };
  for (let lo = 0, hi = 0; hi < times.length; hi++) {
    while (times[hi] - times[lo] >= 1) lo++;
    if (hi - lo + 1 > best.lines) best = { lines: hi - lo + 1, at: times[lo] };
  }
  return best;
}

export function logRateResult(kernelLog: string, max: number): CheckResult {
  const b = busiestSecond(logTimes(kernelLog));
  const where = `${b.lines} lines in the second from [${b.at.toFixed(6)}]`;
  return b.lines <= max
    ? { name: 'log-rate', ok: true, durationMs: 0, message: `at most ${b.lines} lines/s (limit ${max})` }
    : {
        name: 'log-rate',
        ok: false,
        failure: 'app',
        durationMs: 0,
        message: `the kernel log grew ${b.lines} lines in one second, over the limit of ${max}`,
        evidence: where,
      };
}

export const logRate: CheckRoom<number> = {
  id: 'log_rate',
  about: 'fails a test whose kernel log grows more than N lines in any one second',
  setting: z.number().int().min(1).max(1_000_000).describe('the most kernel log lines a test may add in any one second'),
  wanted: () => false,
  create: ({ setting }) => ({ id: 'log_rate', judge: (e) => ({ results: [logRateResult(e.kernelLog, setting ?? Number.POSITIVE_INFINITY)] }) }),
};
