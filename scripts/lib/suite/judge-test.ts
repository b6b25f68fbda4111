// The verdict of one suite test, as a pure function of what the guest
// returned: the step records, the test's kernel log (and serial console),
// the taint flags around it and the expected transcript, judged by each of
// the run's checks (checks/). Re-judging a saved run is calling it again
// with the same records.
import { tail } from '../core/proc.ts';
import { stepLines, withoutMarks } from '../guest/step-marks.ts';
import type { StepRecord } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import type { CompiledRules } from '../verdict/splat.ts';
import { TAINT_OOT } from '../verdict/taint-flags.ts';
import type { Check, JudgeContext, TestEvidence, TestExpect } from './checks/check.ts';
import { baseChecks } from './checks/registry.ts';

export interface JudgedTest {
  checks: CheckResult[];
  captures?: Record<string, string>;
  firstLoad: boolean;
  untrusted?: string;
}

/** A step's check; a failed one's evidence is its output and its own kernel lines (#29.15), or, in a log without its marks, the test's last lines. */
const stepResult = (r: StepRecord, kernelLog: string): CheckResult => {
  if (r.ok) return { name: r.name, ok: r.ok, failure: r.failure, durationMs: r.result.durationMs, message: r.message };
  const own = stepLines(kernelLog, r.name);
  const kernel = own
    ? own.length
      ? `kernel log while ${r.name} ran:\n${tail(own.join('\n'), 25)}`
      : `the kernel printed nothing while ${r.name} ran`
    : `kernel log of this test, last lines:\n${tail(withoutMarks(kernelLog), 15)}`;
  return {
    name: r.name,
    ok: r.ok,
    failure: r.failure,
    durationMs: r.result.durationMs,
    message: r.message,
    evidence: `${tail(`${r.result.stdout}\n${r.result.stderr}`, 10)}\n${kernel}`,
  };
};

/** The loads, the checks placed after the run, the unloads, then the other checks; the first reason to distrust the kernel wins. */
export function judgeTest(marked: TestEvidence, x: TestExpect, rules: CompiledRules, checks: readonly Check[] = baseChecks()): JudgedTest {
  // The checks read the log as the kernel wrote it; the steps' own lines are cut from the marked one.
  const e = { ...marked, kernelLog: withoutMarks(marked.kernelLog) };
  const firstLoad = x.loadsHere && (e.taintBefore === undefined || (e.taintBefore & TAINT_OOT) === 0);
  // A hung step is what makes kmodvm ask the guest for a sysrq task dump (run-test.ts): only then is one in the log ours.
  const hung = Boolean(e.run?.result.timedOut || [...e.loads, ...e.unloads].some((r) => r.result.timedOut));
  const ctx: JudgeContext = { expect: x, rules, firstLoad, hung };
  const judged = checks.map((c) => ({ after: c.after ?? 'unload', j: c.judge?.(e, ctx) }));
  const results = (after: 'run' | 'unload'): CheckResult[] => judged.filter((k) => k.after === after).flatMap((k) => k.j?.results ?? []);
  const out = [
    ...e.loads.map((r) => stepResult(r, marked.kernelLog)),
    ...results('run'),
    ...e.unloads.map((r) => stepResult(r, marked.kernelLog)),
    ...results('unload'),
  ];
  const captures = judged.map((k) => k.j?.captures).find(Boolean);
  const stuck = e.unloads.find((r) => !r.ok);
  const untrusted = judged.map((k) => k.j?.untrusted).find(Boolean) ?? (hung ? 'a step hung' : stuck ? `${stuck.name} failed` : undefined);
  return { checks: out, captures, firstLoad, untrusted };
}
