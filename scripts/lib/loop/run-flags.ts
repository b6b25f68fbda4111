// The run's flags that the suite's runner reads (suite/types.ts SuiteRunInput), from the options, once for vm:test and for an instance.
import type { Config } from '../core/config.ts';
import { gdbAsk } from '../suite/gdb-step.ts';
import type { SuiteRunInput } from '../suite/types.ts';

/** --update, --repeat's guest and --until-fail, --gdb. On a kept instance the repeats stay on it: restarting the user's instance for each run is not what --reuse asked for. */
export const runFlags = (
  c: Pick<Config, 'update' | 'sameGuest' | 'untilFail' | 'gdb' | 'gdbBatch' | 'debugKernel' | 'kernelBuildDir'>,
  o: { instance: boolean },
): Pick<SuiteRunInput, 'update' | 'repeat' | 'gdb'> => ({
  update: c.update,
  repeat: { sameGuest: o.instance || c.sameGuest, untilFail: c.untilFail },
  gdb: gdbAsk(c),
});
