// The verdict's data model: what one check found (CheckResult), a suite
// test's report, a run's report, and how the worst failure decides.
import { EXIT_CODES, type FailureClass } from '../core/errors.ts';
import type { BootHow } from '../vm/resume.ts';

export interface CheckResult {
  name: string;
  ok: boolean;
  failure?: FailureClass;
  durationMs: number;
  message?: string;
  evidence?: string;
  /** Source locations to annotate (compiler errors, the failing transcript line, a kernel report's line). */
  annotations?: { file: string; line: number; col?: number; message: string }[];
  /** A unit test's own result (a KUnit case): JUnit lists it as a testcase of its own, besides its suite test's. */
  unit?: boolean;
  /** A failed no-splat check: the splat's kind (its rule id in rules/splat.json: kasan, lockdep, memcheck-leak, …). */
  splatId?: string;
}

/** One test of a suite: its own checks, and its worst failure. */
export interface TestReport {
  name: string;
  ok: boolean;
  failure?: FailureClass;
  durationMs: number;
  checks: CheckResult[];
  captures?: Record<string, string>;
  freshGuest?: string;
  /** Under --repeat: the test's own name (this report's is `name#k`). */
  base?: string;
}

/** Under --repeat: one test's runs counted (suite/repeat.ts). */
export interface PassRate {
  name: string;
  runs: number;
  passed: number;
  flaky: boolean;
  /** The worst failure of its failed runs. */
  failure?: FailureClass;
}

export interface RunReport {
  verdict: 'pass' | 'fail';
  failure?: FailureClass;
  exitCode: number;
  runDir: string;
  accel: string;
  kernelVersion?: string;
  imageKey?: string;
  qemuVersion?: string;
  startedAt: string;
  durationMs: number;
  bootToSshMs?: number;
  /** How the guest came up: booted, resumed from a snapshot, or booted and saved first (scripts/lib/vm/snapshot.ts). */
  bootHow?: BootHow;
  /** The run's own checks: boot, build, upload, setup, then (after the tests) unload, poweroff, no-splat. */
  checks: CheckResult[];
  /** The suite's tests, each with its own checks; they come after checks[0 .. testsAt). */
  tests?: TestReport[];
  testsAt?: number;
  /** The suite file run. */
  suite?: string;
  captures?: Record<string, string>;
  /** Under --repeat or --shuffle: each test's pass rate, and the seed of the order. */
  passRates?: PassRate[];
  seed?: number;
}

/**
 * The worst failure class of some checks. A splat outranks everything (a
 * crash also makes steps fail); then a bug of ours, the machine's failures,
 * bad input, and the module's failures from a hang down to a transcript.
 */
export const FAILURE_RANK: readonly FailureClass[] = [
  'splat',
  'internal',
  'boot',
  'upload',
  'image',
  'setup',
  'usage',
  'timeout',
  'suite-setup',
  'load',
  'build',
  'app',
  'kunit',
  'transcript',
  'static',
  'coverage',
];

/** One test's report: its checks, and its worst failure. */
export function testReport(name: string, checks: CheckResult[], durationMs: number, freshGuest?: string): TestReport {
  const w = worstOf(checks);
  return { name, ok: !w, failure: w, durationMs, checks, freshGuest };
}

export function worstOf(checks: readonly CheckResult[]): FailureClass | undefined {
  const bad = checks.filter((c) => !c.ok).map((c) => c.failure ?? 'internal');
  return FAILURE_RANK.find((f) => bad.includes(f));
}

/** Every check of a report: its own and its tests'. */
export const allChecks = (r: Pick<RunReport, 'checks' | 'tests'>): CheckResult[] => [...r.checks, ...(r.tests ?? []).flatMap((t) => t.checks)];

/** The worst failure class over all checks decides (FAILURE_RANK). No failed check is a pass. */
export function verdictOf(checks: readonly CheckResult[]): { verdict: 'pass' | 'fail'; failure?: FailureClass; exitCode: number } {
  const failure = worstOf(checks);
  if (!failure) return { verdict: 'pass', exitCode: 0 };
  return { verdict: 'fail', failure, exitCode: EXIT_CODES[failure] };
}

/** A suite test as one check: failed when any of its checks failed, with their evidence. */
export function testAsCheck(t: TestReport): CheckResult {
  const bad = t.checks.filter((c) => !c.ok);
  return {
    name: `test ${t.name}`,
    ok: t.ok,
    failure: t.failure,
    durationMs: t.durationMs,
    message: bad.length ? bad.map((c) => `${c.name}: ${c.message ?? c.failure}`).join('; ') : `${t.checks.length} checks`,
    evidence: bad.map((c) => `${c.name}: ${c.message ?? ''}${c.evidence ? `\n${c.evidence}` : ''}`).join('\n') || undefined,
    annotations: bad.flatMap((c) => c.annotations ?? []),
  };
}

/** The run's checks with each test folded into one, in order. */
export function flatChecks(r: Pick<RunReport, 'checks' | 'tests' | 'testsAt'>): CheckResult[] {
  const at = r.testsAt ?? r.checks.length;
  return [...r.checks.slice(0, at), ...(r.tests ?? []).map(testAsCheck), ...r.checks.slice(at)];
}

/** "boot to SSH", or how else the guest got there. */
export function bootWords(r: Pick<RunReport, 'bootHow'>): string {
  return r.bootHow === 'resumed' ? 'resume to SSH' : r.bootHow === 'saved, then resumed' ? 'boot, save and resume to SSH' : 'boot to SSH';
}
