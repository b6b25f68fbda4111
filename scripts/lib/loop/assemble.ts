import path from 'node:path';
import type { Config } from '../core/config.ts';
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
  report.checks = [...head, ...(r?.before ?? []), ...(r?.after ?? []), ...tail];
  report.testsAt = head.length + (r?.before.length ?? 0);
  report.tests = r?.tests;
  report.captures = r?.tests.find((t) => t.captures)?.captures;
  return Object.assign(report, verdictOf(allChecks(report)), { durationMs: Date.now() - started });
}
