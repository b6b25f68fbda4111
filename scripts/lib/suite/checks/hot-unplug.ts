// Lifecycle (#25): before a module's rmmod, each hot-plugged device its
// drivers are bound to is unplugged through QMP (QEMU's DEVICE_DELETED says
// the guest let it go: remove() ran), plugged again, and must be bound to
// the same driver again (probe() ran). `lifecycle: {hot_unplug: true}`.
import type { Timeouts } from '../../core/config.ts';
import { runStep, type StepSpec } from '../../guest/steps.ts';
import type { CheckResult } from '../../verdict/model.ts';
import { type Bound, boundDevices, judgeLifecycle, nothingBound } from './bound.ts';
import type { CheckRoom, GuestEnv } from './check.ts';

const ID = 'hot-unplug';

/** The device bound to its driver again after the replug (the bus probes it as it arrives). */
export const reboundStep = (b: Bound, t: Timeouts): StepSpec => ({
  name: `rebound ${b.device}`,
  argv: [
    'sh',
    '-c',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's own ${x##*/}, not a template
    'n=0; while [ ! -e "$1/$2" ]; do n=$((n+1)); [ "$n" -ge "$3" ] && { echo "$2 was not bound to ${1##*/} again after the replug (probe failed?)" >&2; exit 1; }; sleep 0.02; done',
    'sh',
    b.driver,
    b.device,
    String(Math.max(1, Math.floor((t.load * 1000) / 20))),
  ],
  timeoutMs: t.load * 1000 + 5000,
  failure: 'load',
});

async function cycle(env: GuestEnv, id: string, b: Bound): Promise<CheckResult> {
  const name = `hot-unplug ${id}`;
  const t0 = Date.now();
  const out = await env.devices!.unplug(id);
  if (!out.ok) return { ...out, name };
  const back = await env.devices!.plug([id]);
  const bad = back.find((x) => !x.ok);
  if (bad) return { ...bad, name, durationMs: Date.now() - t0 };
  const r = await runStep(env.guest.session, reboundStep(b, env.timeouts));
  await env.record(r);
  const durationMs = Date.now() - t0;
  return r.ok
    ? { name, ok: true, durationMs, message: `${b.device} unplugged, plugged and bound to ${b.driver.split('/').pop()} again` }
    : { name, ok: false, failure: 'load', durationMs, message: r.message, evidence: r.result.stderr.trim() };
}

export const hotUnplug: CheckRoom = {
  id: ID,
  about: 'lifecycle hot_unplug: each bound hot-plugged device unplugged and plugged again through QMP, and bound again',
  wanted: (c) => Boolean(c.lifecycle?.includes('hot_unplug')),
  create: () => ({
    id: ID,
    beforeUnload: async (env, m) => {
      if (!env.lifecycle?.hot_unplug) return;
      const byAddress = new Map([...(env.devices?.plugged() ?? [])].map(([id, a]) => [a, id]));
      const bound = (await boundDevices(env, m)).filter((b) => byAddress.has(b.device));
      if (!bound.length) env.report?.(ID, nothingBound(ID, m));
      for (const b of bound) env.report?.(ID, await cycle(env, byAddress.get(b.device)!, b));
    },
    judge: (e) => judgeLifecycle(ID, e),
  }),
};
