// Every check, listed once, in the order their results appear in a test's
// report. A run's checks are those its choice wants (the memory checks with
// --memcheck) and those its suite turns on with a setting (checks:).
import { z } from 'zod';
import type { Check, CheckChoice, CheckRoom } from './check.ts';
import { coverage } from './coverage.ts';
import { exitCode } from './exit-code.ts';
import { heldRmmod } from './held-rmmod.ts';
import { hotUnplug } from './hot-unplug.ts';
import { kunit } from './kunit.ts';
import { leakCheck } from './leak-check.ts';
import { logRate } from './log-rate.ts';
import { noSplat } from './no-splat.ts';
import { reload } from './reload.ts';
import { slabCheck } from './slab-check.ts';
import { taint } from './taint.ts';
import { transcriptMatch } from './transcript-match.ts';
import { unbindBind } from './unbind-bind.ts';

export const CHECKS: readonly CheckRoom<never>[] = [
  exitCode,
  kunit,
  transcriptMatch,
  unbindBind,
  hotUnplug,
  heldRmmod,
  reload,
  taint,
  noSplat,
  slabCheck,
  leakCheck,
  logRate,
  coverage,
] as CheckRoom<never>[];

/** The suite's `checks:` object: a key per check that takes a setting. */
export const checksSetting = z
  .strictObject(Object.fromEntries(CHECKS.filter((r) => r.setting).map((r) => [r.id, (r.setting as z.ZodType).optional()])))
  .describe('checks turned on by a setting, such as log_rate: 200 (README "Checks")');

/** What a run asks of its checks: the choice, and the suite's settings by check id. */
export interface CheckPlan {
  choice: CheckChoice;
  settings: Readonly<Record<string, unknown>>;
}

/** The ids of a run's checks, in report order. */
export const checkIds = (p: CheckPlan): string[] => CHECKS.filter((r) => r.wanted(p.choice) || p.settings[r.id] !== undefined).map((r) => r.id);

/** A run's checks, each made new (a check's state is its run's). */
export const makeChecks = (p: CheckPlan): Check[] =>
  CHECKS.filter((r) => r.wanted(p.choice) || p.settings[r.id] !== undefined).map((r) => r.create({ choice: p.choice, setting: p.settings[r.id] as never }));

/**
 * The kernel command line the checks add, each argument once; slub_debug's
 * flags combine into one argument (the kernel keeps only the last), in the
 * order the checks name them.
 */
export function kernelArgsOf(checks: readonly Pick<Check, 'kernelArgs'>[]): string[] {
  const out: string[] = [];
  for (const a of checks.flatMap((c) => c.kernelArgs ?? [])) {
    const slub = out.findIndex((x) => x.startsWith('slub_debug='));
    if (a.startsWith('slub_debug=') && slub >= 0) {
      const flags = [...a.slice('slub_debug='.length)].filter((f) => !out[slub].includes(f)).join('');
      out[slub] += flags;
    } else if (!out.includes(a)) out.push(a);
  }
  return out;
}

/** Every lifecycle option: a saved run's checks are named by their ids, so any of them may be made. */
const LIFECYCLE_ALL = ['unbind_bind', 'hot_unplug', 'held_rmmod', 'reload'];

/** The checks of a saved run by their ids (kmodvm judge): a check this kmodvm does not know is left out. */
export const checksNamed = (ids: readonly string[], settings: Readonly<Record<string, unknown>> = {}): Check[] =>
  CHECKS.filter((r) => ids.includes(r.id)).map((r) =>
    r.create({ choice: { memcheck: false, debugKernel: false, lifecycle: LIFECYCLE_ALL }, setting: settings[r.id] as never }),
  );

/** The checks of a run without --memcheck or settings: what a test is judged by at least. */
export const baseChecks = (): Check[] => makeChecks({ choice: { memcheck: false, debugKernel: false, lifecycle: LIFECYCLE_ALL }, settings: {} });
