// Lifecycle (#25): before a module's rmmod, each device its drivers are
// bound to is unbound and bound again through the driver's own sysfs files,
// so remove() and probe() run once more under the splat, taint and memory
// checks. `lifecycle: {unbind_bind: true}` for the suite or a test.
import type { Timeouts } from '../../core/config.ts';
import { tail } from '../../core/proc.ts';
import { runStep, type StepSpec } from '../../guest/steps.ts';
import { type Bound, boundDevices, judgeLifecycle, nothingBound } from './bound.ts';
import type { CheckRoom } from './check.ts';

const ID = 'unbind-bind';

/** Unbind, bind, and the device bound to the driver again. */
export const unbindBindStep = (b: Bound, t: Timeouts): StepSpec => ({
  name: `unbind-bind ${b.device}`,
  argv: [
    'sh',
    '-c',
    'echo "$2" > "$1/unbind" || exit 1; [ -e "$1/$2" ] && { echo "$2 is still bound after unbind" >&2; exit 1; }; echo "$2" > "$1/bind" || exit 1; [ -e "$1/$2" ] || { echo "$2 did not bind again (probe failed?)" >&2; exit 1; }',
    'sh',
    b.driver,
    b.device,
  ],
  timeoutMs: t.load * 1000,
  failure: 'load',
});

export const unbindBind: CheckRoom = {
  id: ID,
  about: "lifecycle unbind_bind: each bound device unbound and bound again through its driver's sysfs files, before rmmod",
  wanted: (c) => Boolean(c.lifecycle?.includes('unbind_bind')),
  create: () => ({
    id: ID,
    beforeUnload: async (env, m) => {
      if (!env.lifecycle?.unbind_bind) return;
      const bound = await boundDevices(env, m);
      if (!bound.length) env.report?.(ID, nothingBound(ID, m));
      for (const b of bound) {
        const r = await runStep(env.guest.session, unbindBindStep(b, env.timeouts));
        await env.record(r);
        env.report?.(ID, {
          name: r.name,
          ok: r.ok,
          failure: r.failure,
          durationMs: r.result.durationMs,
          message: r.ok ? `${b.driver.split('/').pop()}: remove and probe again` : r.message,
          evidence: r.ok ? undefined : tail(r.result.stderr, 10),
        });
      }
    },
    judge: (e) => judgeLifecycle(ID, e),
  }),
};
