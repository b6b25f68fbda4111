// What the lifecycle checks (unbind-bind.ts, hot-unplug.ts, reload.ts)
// share: the devices a module's drivers are bound to, read from sysfs
// (/sys/module/<m>/drivers/<bus>:<drv> → /sys/bus/<bus>/drivers/<drv>, whose
// links other than `module` are the bound devices), and the judgement of
// what their guest steps reported.
import type { Timeouts } from '../../core/config.ts';
import { runStep, type StepSpec } from '../../guest/steps.ts';
import type { CheckResult } from '../../verdict/model.ts';
import type { LoadedModule } from '../test-plan.ts';
import type { GuestEnv, Judgement, TestEvidence } from './check.ts';

export interface Bound {
  /** The driver's sysfs directory, /sys/bus/<bus>/drivers/<drv>. */
  driver: string;
  /** The device's name there: a PCI address, a USB port path, an I2C client. */
  device: string;
}

export const boundStep = (m: Pick<LoadedModule, 'name'>, t: Timeouts): StepSpec => ({
  name: `bound devices ${m.name}`,
  argv: [
    'sh',
    '-c',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's own ${x##*/}, not a template
    'for d in /sys/module/"$1"/drivers/*; do [ -e "$d" ] || continue; r=$(readlink -f "$d"); for x in "$r"/*; do [ -L "$x" ] && [ "${x##*/}" != module ] && printf "%s\\t%s\\n" "$r" "${x##*/}"; done; done; true',
    'sh',
    m.name.replace(/-/g, '_'),
  ],
  timeoutMs: t.command * 1000,
  failure: 'load',
});

/** The `driver<TAB>device` lines of boundStep. Pure. */
export function parseBound(stdout: string): Bound[] {
  return stdout
    .split('\n')
    .map((l) => l.split('\t'))
    .filter((p) => p.length === 2 && p[0].startsWith('/sys/') && p[1])
    .map(([driver, device]) => ({ driver, device }));
}

export async function boundDevices(env: GuestEnv, m: LoadedModule): Promise<Bound[]> {
  const r = await runStep(env.guest.session, boundStep(m, env.timeouts));
  await env.record(r);
  return parseBound(r.result.stdout);
}

/** What a lifecycle check reports for a module that drives no device: not a result of its own, unless no module of the test drove one. */
export const BINDS_NOTHING = 'binds no device';

export const nothingBound = (id: string, m: LoadedModule): CheckResult => ({ name: `${id} ${m.name}`, ok: true, durationMs: 0, message: BINDS_NOTHING });

/** The check's results for one test: each device it exercised; a test whose modules bound nothing fails, as the option cannot have been meant so. */
export function judgeLifecycle(id: string, e: TestEvidence): Judgement | undefined {
  const got = e.steps?.[id];
  if (!got?.length) return undefined;
  const real = got.filter((r) => r.message !== BINDS_NOTHING);
  if (real.length) return { results: real, untrusted: real.some((r) => !r.ok) ? `${id} failed` : undefined };
  const names = got.map((r) => r.name.slice(id.length + 1)).join(', ');
  return {
    results: [
      {
        name: id,
        ok: false,
        failure: 'load',
        durationMs: 0,
        message: `lifecycle ${id} is on, but ${names} bound no device`,
        evidence: 'next: give the driver a device to bind (devices: in kmodvm.yaml, docs/devices.md), or leave the lifecycle check off for this test',
      },
    ],
  };
}
