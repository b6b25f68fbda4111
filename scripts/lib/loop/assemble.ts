import path from 'node:path';
import type { Config } from '../core/config.ts';
import { flakyCheck, passRates } from '../suite/repeat.ts';
import type { runSuite } from '../suite/run.ts';
import { allChecks, type CheckResult, type RunReport, verdictOf } from '../verdict/model.ts';

export function newRunDir(c: Pick<Config, 'runsDir'>, now = new Date()): string {
  return path.join(c.runsDir, `${now.toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
}

/** The report of a run: its own checks before and after the suite's tests, and the verdict over all of them. */
export function assemble(
  report: RunReport,
  head: CheckResult[],
  r: Awaited<ReturnType<typeof runSuite>> | undefined,
  tail: CheckResult[],
  started: number,
): RunReport {
  // Under --repeat or --shuffle: each test's pass rate, in a check of its own after the tests (suite/repeat.ts).
  const repeated = r && (r.tests.some((t) => t.base) || report.seed !== undefined);
  if (repeated) report.passRates = passRates(r.tests);
  const rates = report.passRates ? [flakyCheck(report.passRates, { seed: report.seed, stoppedAt: r?.stoppedAt })] : [];
  report.checks = [...head, ...(r?.before ?? []), ...rates, ...(r?.after ?? []), ...tail];
  report.testsAt = head.length + (r?.before.length ?? 0);
  report.tests = r?.tests;
  report.captures = r?.tests.find((t) => t.captures)?.captures;
  return Object.assign(report, verdictOf(allChecks(report)), { durationMs: Date.now() - started });
}
