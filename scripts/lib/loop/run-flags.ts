// The run's flags that the suite's runner reads (suite/types.ts SuiteRunInput), from the options, once for vm:test and for an instance.
import type { Config } from '../core/config.ts';
import { dumpAsk } from '../suite/dump-step.ts';
import { gdbAsk } from '../suite/gdb-step.ts';
import type { SuiteRunInput } from '../suite/types.ts';

/** --update, --repeat's guest, --until-fail and --keep-on-fail, --gdb, --dump. On a kept instance the repeats stay on it: restarting the user's instance for each run is not what --reuse asked for. */
export const runFlags = (
  c: Pick<
    Config,
    'update' | 'sameGuest' | 'untilFail' | 'keepOnFail' | 'gdb' | 'gdbBatch' | 'gdbBeforeLoad' | 'debugKernel' | 'kernelBuildDir' | 'kernelImage' | 'dump'
  >,
  o: { instance: boolean; img?: Parameters<typeof dumpAsk>[1]; symbols?: string },
): Pick<SuiteRunInput, 'update' | 'repeat' | 'gdb' | 'dump'> => ({
  update: c.update,
  // --keep-on-fail stops at the first failed test too: its guest is the one kept.
  repeat: { sameGuest: o.instance || c.sameGuest, untilFail: c.untilFail || Boolean(c.keepOnFail), keep: Boolean(c.keepOnFail) },
  gdb: gdbAsk(c, o.symbols),
  dump: dumpAsk(c, o.img, o.symbols),
});
