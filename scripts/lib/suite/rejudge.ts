// kmodvm judge RUNDIR [--transcript FILE]: a saved run judged again without
// a VM, as `kunit.py parse` re-parses a saved log. Each test's evidence
// (tests/<name>/evidence.json, written by the run) goes through the same
// judge as in the run; with --transcript, against that transcript instead
// of the test's own. The run's own checks (boot, build, upload, poweroff,
// the run-wide splat check) are taken from report.json as they were.
import path from 'node:path';
import { z } from 'zod';
import { KmodvmError } from '../core/errors.ts';
import { readRegular, readUnder } from '../core/tree-fs.ts';
import { allChecks, type RunReport, type TestReport, verdictOf } from '../verdict/model.ts';
import type { CompiledRules } from '../verdict/splat.ts';
import { parseTranscript } from '../verdict/transcript.ts';
import type { TestEvidence, TestExpect } from './checks/check.ts';
import { baseChecks, checksNamed } from './checks/registry.ts';
import { judgeTest } from './judge-test.ts';
import { TRANSCRIPT_MAX } from './load.ts';
import { fileSafe } from './test-plan.ts';

/** What a run keeps of each test to judge it again: the evidence, and what was expected. */
export interface SavedTest {
  evidence: TestEvidence;
  /** checks: the run's check ids and the suite's settings (a run older than them: the base checks). */
  expect: { exitCode: number; transcriptFile?: string; loadsHere: boolean; kunit?: string; checks?: string[]; settings?: Record<string, unknown> };
}

/**
 * What kmodvm judge reads of a saved run, checked before use: a run
 * directory may come from another machine (a CI artifact), so a malformed
 * file is bad input (exit 2) naming it, never a crash.
 */
const stepSchema = z.looseObject({ name: z.string(), ok: z.boolean(), result: z.looseObject({}) });
const savedSchema = z.object({
  evidence: z.looseObject({
    loads: z.array(stepSchema),
    run: stepSchema.optional(),
    unloads: z.array(stepSchema),
    taintBefore: z.number().optional(),
    taintAfter: z.number().optional(),
    pid: z.string().optional(),
    kernelLog: z.string(),
    serial: z.string(),
    hangEvidence: z.string().optional(),
  }),
  expect: z.object({
    exitCode: z.number().int(),
    transcriptFile: z.string().optional(),
    loadsHere: z.boolean(),
    kunit: z.string().optional(),
    checks: z.array(z.string()).optional(),
    settings: z.record(z.string(), z.unknown()).optional(),
  }),
});
const reportSchema = z.looseObject({ tests: z.array(z.looseObject({ name: z.string() })).optional(), checks: z.array(z.looseObject({})) });

async function readJson<S extends z.ZodType>(file: string, schema: S, missing: () => KmodvmError): Promise<z.infer<S>> {
  const text = await readRegular(file, 256 * 2 ** 20).then(String, () => Promise.reject(missing()));
  const bad = (why: string) => new KmodvmError('usage', `${file} is not a kmodvm run's file: ${why}`, { hint: 'pass a run directory as kmodvm wrote it' });
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw bad((e as Error).message);
  }
  const r = schema.safeParse(json);
  if (!r.success) throw bad(`${r.error.issues[0].path.join('.') || '(top level)'}: ${r.error.issues[0].message}`);
  return r.data;
}

/**
 * The transcript a saved test names, read only from the current directory
 * down (your checkout): a run directory from elsewhere must not make kmodvm
 * read, and print in a diff, a file it names (#24).
 */
async function savedTranscript(trFile: string, given: boolean): Promise<string> {
  const root = given ? path.dirname(path.resolve(trFile)) : process.cwd();
  return readUnder(root, path.resolve(trFile), TRANSCRIPT_MAX).then(String, (e: Error) => {
    throw new KmodvmError('usage', `cannot read the transcript ${trFile}: ${e.message}`, {
      hint: given ? 'pass a regular file' : 'run kmodvm judge from the checkout the run was made in, or pass --transcript FILE',
    });
  });
}

export async function rejudge(runDir: string, rules: CompiledRules, o: { transcript?: string } = {}): Promise<RunReport> {
  const report = (await readJson(
    path.join(runDir, 'report.json'),
    reportSchema,
    () =>
      new KmodvmError('usage', `${runDir} has no report.json: not a run directory`, {
        hint: 'pass a directory a vm:test run printed as "run directory:"',
      }),
  )) as unknown as RunReport;
  const tests: TestReport[] = [];
  for (const t of report.tests ?? []) {
    const file = path.join(runDir, 'tests', fileSafe(t.name), 'evidence.json');
    const saved = (await readJson(
      file,
      savedSchema,
      () => new KmodvmError('usage', `${file} is missing: the run is older than kmodvm judge`, { hint: 'run vm:test again' }),
    )) as unknown as SavedTest;
    const trFile = o.transcript ?? saved.expect.transcriptFile;
    const expect: TestExpect = {
      exitCode: saved.expect.exitCode,
      loadsHere: saved.expect.loadsHere,
      kunit: saved.expect.kunit,
      transcript: trFile ? { parsed: parseTranscript(await savedTranscript(trFile, o.transcript !== undefined), trFile), file: trFile } : undefined,
    };
    const checks = saved.expect.checks ? checksNamed(saved.expect.checks, saved.expect.settings) : baseChecks();
    const j = judgeTest(saved.evidence, expect, rules, checks);
    const failed = verdictOf(j.checks);
    tests.push({ ...t, checks: j.checks, captures: j.captures, ok: failed.verdict === 'pass', failure: failed.failure });
  }
  const out: RunReport = { ...report, tests };
  return Object.assign(out, verdictOf(allChecks(out)));
}
