// kmodvm judge RUNDIR [--transcript FILE]: a saved run judged again without
// a VM, as `kunit.py parse` re-parses a saved log. Each test's evidence
// (tests/<name>/evidence.json, written by the run) goes through the same
// judge as in the run; with --transcript, against that transcript instead
// of the test's own. The run's own checks (boot, build, upload, poweroff,
// the run-wide splat check) are taken from report.json as they were.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { KmodvmError } from '../core/errors.ts';
import { allChecks, verdictOf, type RunReport, type TestReport } from '../verdict/report.ts';
import type { CompiledRules } from '../verdict/splat.ts';
import { judgeTest, type TestEvidence, type TestExpect } from './judge.ts';
import { parseTranscript } from '../verdict/transcript.ts';
import { fileSafe } from './test-plan.ts';

/** What a run keeps of each test to judge it again: the evidence, and what was expected. */
export interface SavedTest {
  evidence: TestEvidence;
  expect: { exitCode: number; transcriptFile?: string; loadsHere: boolean };
}

export async function rejudge(runDir: string, rules: CompiledRules, o: { transcript?: string } = {}): Promise<RunReport> {
  const report = JSON.parse(
    await readFile(path.join(runDir, 'report.json'), 'utf8').catch(() => {
      throw new KmodvmError('usage', `${runDir} has no report.json: not a run directory`, {
        hint: 'pass a directory a vm:test run printed as "run directory:"',
      });
    }),
  ) as RunReport;
  const tests: TestReport[] = [];
  for (const t of report.tests ?? []) {
    const file = path.join(runDir, 'tests', fileSafe(t.name), 'evidence.json');
    const saved = JSON.parse(
      await readFile(file, 'utf8').catch(() => {
        throw new KmodvmError('usage', `${file} is missing: the run is older than kmodvm judge`, { hint: 'run vm:test again' });
      }),
    ) as SavedTest;
    const trFile = o.transcript ?? saved.expect.transcriptFile;
    const expect: TestExpect = {
      exitCode: saved.expect.exitCode,
      loadsHere: saved.expect.loadsHere,
      transcript: trFile ? { parsed: parseTranscript(await readFile(trFile, 'utf8'), trFile), file: trFile } : undefined,
    };
    const j = judgeTest(saved.evidence, expect, rules);
    const failed = verdictOf(j.checks);
    tests.push({ ...t, checks: j.checks, captures: j.captures, ok: failed.verdict === 'pass', failure: failed.failure });
  }
  const out: RunReport = { ...report, tests };
  return Object.assign(out, verdictOf(allChecks(out)));
}
