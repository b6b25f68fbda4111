// --dump in a suite's run: each guest the run prepares is armed
// (debug/dump.ts), and after each test the dump step, when the guest
// panicked during it, joins the test's report. A guest that cannot give a
// dump stops the run before its tests, as a setup failure that says why.
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { DumpWatch } from '../debug/dump.ts';
import { stockPackage } from '../debug/kernel-symbols.ts';
import type { Guest } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import type { LoadedModule } from './test-plan.ts';
import type { DumpAsk, SuiteRunInput } from './types.ts';

/** The run's --dump: on with the flag (the suite's dump: true turns it on in run.ts), the kernel's symbols where the run has them, and the stock kernel's package. */
export const dumpAsk = (
  c: Pick<Config, 'dump' | 'debugKernel' | 'kernelImage'>,
  img?: { manifest: Parameters<typeof stockPackage>[0] },
  vmlinux?: string,
): DumpAsk => ({ on: c.dump, vmlinux, kernelPackage: !c.debugKernel && !c.kernelImage && img ? stockPackage(img.manifest) : undefined });

export const dumpWanted = (i: Pick<SuiteRunInput, 'dump' | 'suite'>): boolean => Boolean(i.dump && (i.dump.on || i.suite.dump));

/** Arms a prepared guest; a failed arming is a failed `dump` step (setup). */
export async function armDump(
  i: Pick<SuiteRunInput, 'dump' | 'suite' | 'runDir' | 'rules' | 'c' | 'log'>,
  guest: Guest,
  modules: readonly LoadedModule[],
): Promise<{ watch?: DumpWatch; failed?: CheckResult }> {
  if (!dumpWanted(i)) return {};
  const t0 = Date.now();
  try {
    const watch = await DumpWatch.arm({
      guest,
      runDir: i.runDir,
      modules,
      rules: i.rules,
      vmlinux: i.dump?.vmlinux,
      kernelPackage: i.dump?.kernelPackage,
      timeoutMs: i.c.timeouts.command * 1000,
      openCommand: kmodvmCommand('crash', i.runDir),
    });
    i.log('dump: armed: a panic or an oops of the guest leaves its memory in the run directory');
    return { watch };
  } catch (e) {
    if (!(e instanceof KmodvmError)) throw e;
    return { failed: { name: 'dump', ok: false, failure: e.failure, durationMs: Date.now() - t0, message: e.message, evidence: e.hint && `next: ${e.hint}` } };
  }
}
