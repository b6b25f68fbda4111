// A run is a plan: the options (CLI, environment, defaults; core/config.ts)
// and the suite give one frozen RunPlan, made once before anything starts.
// Nothing downstream changes it. The checks it names (suite/checks/) decide
// what the kernel command line gets and what each test is judged by.
import type { Config } from '../core/config.ts';
import { deepFreeze } from '../core/freeze.ts';
import type { CheckPlan } from '../suite/checks/registry.ts';
import { checkIds, kernelArgsOf, makeChecks } from '../suite/checks/registry.ts';
import { allDevices } from '../suite/load.ts';
import type { ResolvedSuite } from '../suite/resolve.ts';

export interface RunPlan {
  /** The run's options with the suite's applied: its kernel_args and checks' arguments, its memcheck. What the lower layers read. */
  readonly options: Readonly<Config>;
  readonly suite: ResolvedSuite;
  /** The checks each test gets, and why (checks/registry.ts). */
  readonly checks: Readonly<CheckPlan> & { readonly ids: readonly string[] };
  /** The tests, or --fail-nth's sweep over each module's load instead. */
  readonly mode: 'tests' | 'fail-nth';
}

/**
 * The plan of a run of this suite. Idempotent: planning a plan's own options
 * again gives the same command line (--reuse plans on the way in and again
 * on the instance; #23 found the suite's kernel_args there twice).
 */
export function planRun(o: Readonly<Config>, rs: ResolvedSuite): RunPlan {
  const memcheck = o.memcheck || rs.suite.memcheck;
  const coverage = o.coverage || rs.suite.coverage;
  const lifecycle = [rs.suite.lifecycle, ...rs.suite.tests.map((t) => t.lifecycle)].flatMap((l) =>
    Object.entries(l ?? {})
      .filter(([, v]) => v)
      .map(([k]) => k),
  );
  const checks: CheckPlan = {
    choice: {
      memcheck,
      debugKernel: Boolean(o.debugKernel),
      kunit: rs.suite.tests.some((t) => t.kunit),
      // The host's gcov: the host's gcc built the debug kernel and builds the modules against it (docs/coverage.md).
      ...(coverage ? { coverage: { min: rs.suite.coverageMin, gcov: 'gcov' } } : {}),
      lifecycle: [...new Set(lifecycle)],
    },
    settings: rs.suite.checks,
  };
  const wanted = [...rs.suite.kernelArgs, ...kernelArgsOf(makeChecks(checks))];
  const kernelArgs = [...o.kernelArgs, ...wanted.filter((a, i) => !o.kernelArgs.includes(a) && wanted.indexOf(a) === i)];
  return deepFreeze({
    // Every device the suite names, its tests' too: the guest gets root ports for the hot ones, the cold ones at boot.
    options: { ...o, memcheck, coverage, kernelArgs, devices: allDevices(rs.suite) },
    suite: rs,
    checks: { ...checks, ids: checkIds(checks) },
    mode: o.failNth ? 'fail-nth' : 'tests',
  });
}
