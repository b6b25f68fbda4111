// Lifecycle (#25): before a module's last rmmod, it is unloaded and loaded
// again N times with the test's parameters, so init and exit (and the probe
// and remove of every device it drives) run N more times under the splat,
// taint and memory checks. The modules unload in reverse order, so nothing
// that needs a module is loaded when it is reloaded. `lifecycle: {reload: N}`.
import { tail } from '../../core/proc.ts';
import { runStep } from '../../guest/steps.ts';
import { insmodStep, rmmodStep } from '../test-plan.ts';
import type { CheckRoom } from './check.ts';

const ID = 'reload';

export const reload: CheckRoom = {
  id: ID,
  about: 'lifecycle reload: N: each module unloaded and loaded again N times before its last rmmod',
  wanted: (c) => Boolean(c.lifecycle?.includes('reload')),
  create: () => ({
    id: ID,
    beforeUnload: async (env, m) => {
      const n = env.lifecycle?.reload;
      if (!n) return;
      const t0 = Date.now();
      for (let k = 1; k <= n; k++) {
        for (const spec of [rmmodStep(m, env.timeouts), insmodStep(m, env.params?.(m) ?? m.params, env.timeouts)]) {
          const r = await runStep(env.guest.session, spec);
          await env.record(r);
          if (!r.ok) {
            const message = `${m.name}, reload ${k} of ${n}: ${r.message}`;
            env.report?.(ID, {
              name: `reload ${m.name}`,
              ok: false,
              failure: r.failure,
              durationMs: Date.now() - t0,
              message,
              evidence: tail(r.result.stderr, 10),
            });
            return;
          }
        }
      }
      env.report?.(ID, { name: `reload ${m.name}`, ok: true, durationMs: Date.now() - t0, message: `unloaded and loaded again ${n} times` });
    },
    judge: (e) => {
      const got = e.steps?.[ID];
      return got?.length ? { results: got, untrusted: got.some((r) => !r.ok) ? 'a reload failed' : undefined } : undefined;
    },
  }),
};
