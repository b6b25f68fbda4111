// The command's exit code: the one the test expects (exit_code:, default 0),
// in time. Its result is the test's `run` point, right after the command.
import { tail } from '../../core/proc.ts';
import type { StepRecord } from '../../guest/steps.ts';
import type { CheckResult } from '../../verdict/model.ts';
import type { CheckRoom } from './check.ts';

export function runResult(r: StepRecord, want: number, hang?: string): CheckResult {
  const base = { name: 'run', durationMs: r.result.durationMs };
  const out = (): string => `stdout, last lines:\n${tail(r.result.stdout, 12)}\nstderr, last lines:\n${tail(r.result.stderr, 12)}`;
  if (r.result.timedOut)
    return { ...base, ok: false, failure: 'timeout', message: `the command ${r.result.reason}`, evidence: [out(), hang].filter(Boolean).join('\n') };
  if (r.result.exitCode === undefined) return { ...base, ok: false, failure: 'app', message: `the command ${r.result.reason}`, evidence: out() };
  if (r.result.exitCode !== want) return { ...base, ok: false, failure: 'app', message: `exited ${r.result.exitCode}, expected ${want}`, evidence: out() };
  return { ...base, ok: true, message: `exited ${want}` };
}

export const exitCode: CheckRoom = {
  id: 'exit-code',
  about: "the command's exit code is the test's exit_code: (default 0), within its timeout",
  wanted: () => true,
  create: () => ({
    id: 'exit-code',
    after: 'run',
    judge: (e, ctx) => (e.run ? { results: [runResult(e.run, ctx.expect.exitCode, e.hangEvidence)] } : undefined),
  }),
};
