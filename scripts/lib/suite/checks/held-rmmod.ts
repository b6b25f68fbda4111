// Lifecycle (#25): rmmod while a device the module drives is bound and a
// user holds it open. The test names the holder, a command line run with
// `sh -c` in its own session from the suite root (`exec 3</dev/edu0; exec
// sleep 600`, or the app's own hold mode). kmodvm waits until a process of
// that session has a device node open (a deadline, and the holder's exit
// noticed), then runs rmmod: refused as in use (the file pins the module)
// or done (the driver let go of its files), either is fine, and the splat,
// taint and memory checks judge what follows. The holder is then ended
// (SIGTERM, then SIGKILL) and its close runs; after a done rmmod the module
// is loaded again, so the test's own rmmod (which finds a leaked
// reference) still runs. `lifecycle: {held_rmmod: "COMMAND"}`.
import type { Timeouts } from '../../core/config.ts';
import { tail } from '../../core/proc.ts';
import { GUEST_WORK, runStep, type StepSpec } from '../../guest/steps.ts';
import type { CheckResult } from '../../verdict/model.ts';
import { insmodStep, type LoadedModule } from '../test-plan.ts';
import { boundDevices, judgeLifecycle, nothingBound } from './bound.ts';
import type { CheckRoom } from './check.ts';

const ID = 'held-rmmod';
/** Seconds the holder has to open a device. */
export const HOLD_WITHIN_S = 20;

/**
 * The guest's side, one step: the holder in its own session, a readiness
 * poll over its processes' open files, rmmod, the holder ended. Its lines:
 * `held /dev/X`, `rmmod RC MESSAGE`, `holder-exit N`; exit 91 when the
 * holder ended before it held a device, 92 when it held none in time.
 */
const SCRIPT = `m=$1 holder=$2 limit=$3
setsid sh -c "$holder" </dev/null >/tmp/kmodvm-holder.log 2>&1 &
pid=$!
held= n=0
while [ -z "$held" ]; do
  if ! kill -0 "$pid" 2>/dev/null; then wait "$pid"; echo "the holder ended (exit $?) before it held a device:"; tail -n 5 /tmp/kmodvm-holder.log; exit 91; fi
  for d in /proc/[0-9]*; do
    # The process group, with the shell's own read and expansions: no fork per process.
    read -r st < "$d/stat" 2>/dev/null || continue
    set -- \${st##*) }
    [ "$3" = "$pid" ] || continue
    for f in "$d"/fd/*; do
      l=$(readlink "$f" 2>/dev/null) || continue
      case $l in /dev/null|/dev/zero|/dev/full|/dev/*random|/dev/pts/*|/dev/tty*|/dev/console|/dev/ptmx) ;; /dev/*) held=$l ;; esac
    done
  done
  n=$((n + 1))
  if [ "$n" -gt $((limit * 20)) ]; then kill -KILL -"$pid"; echo "the holder held no device node within \${limit} s"; tail -n 5 /tmp/kmodvm-holder.log; exit 92; fi
  [ -n "$held" ] || sleep 0.05
done
echo "held $held"
rmmod "$m" 2>/tmp/kmodvm-held-rmmod.err
echo "rmmod $? $(head -c 400 /tmp/kmodvm-held-rmmod.err | tr '\\n' ' ')"
kill -TERM -"$pid" 2>/dev/null
n=0
while kill -0 "$pid" 2>/dev/null; do n=$((n + 1)); [ "$n" -eq 100 ] && kill -KILL -"$pid"; sleep 0.05; done
wait "$pid"
echo "holder-exit $?"`;

export const heldRmmodStep = (m: Pick<LoadedModule, 'name'>, holder: string, t: Timeouts): StepSpec => ({
  name: `held-rmmod ${m.name}`,
  argv: ['sh', '-c', SCRIPT, 'sh', m.name, holder, String(HOLD_WITHIN_S)],
  cwd: GUEST_WORK,
  timeoutMs: (HOLD_WITHIN_S + 10 + t.load) * 1000,
  failure: 'app',
  untrusted: true,
});

export interface HeldRmmod {
  held?: string;
  /** rmmod's exit code, and what it said. */
  rmmod?: { code: number; said: string };
  holderExit?: number;
}

export function parseHeldRmmod(stdout: string): HeldRmmod {
  const out: HeldRmmod = {};
  for (const line of stdout.split('\n')) {
    const held = /^held (\S+)$/.exec(line);
    if (held) out.held = held[1];
    const rm = /^rmmod (\d+) ?(.*)$/.exec(line);
    if (rm) out.rmmod = { code: Number(rm[1]), said: rm[2].trim() };
    const ex = /^holder-exit (\d+)$/.exec(line);
    if (ex) out.holderExit = Number(ex[1]);
  }
  return out;
}

/** The result of one held rmmod: refused as in use, or done; anything else rmmod said fails. */
export function judgeHeld(m: string, h: HeldRmmod, durationMs: number): CheckResult & { unloaded: boolean } {
  const name = `${ID} ${m}`;
  const base = { name, durationMs, unloaded: false };
  if (!h.held || !h.rmmod) return { ...base, ok: false, failure: 'app', message: 'the holder did not hold a device' };
  if (h.rmmod.code === 0) return { ...base, ok: true, unloaded: true, message: `rmmod done while ${h.held} was held open; then the holder closed it` };
  if (/in use/i.test(h.rmmod.said)) return { ...base, ok: true, message: `rmmod refused while ${h.held} was held open (in use: the open file pins ${m})` };
  return { ...base, ok: false, failure: 'load', message: `rmmod while ${h.held} was held open: ${h.rmmod.said || `exit ${h.rmmod.code}`}` };
}

export const heldRmmod: CheckRoom = {
  id: ID,
  about: 'lifecycle held_rmmod: COMMAND: rmmod while the command holds a device of the module open, then the holder closed, before the last rmmod',
  wanted: (c) => Boolean(c.lifecycle?.includes('held_rmmod')),
  create: () => ({
    id: ID,
    beforeUnload: async (env, m) => {
      const holder = env.lifecycle?.held_rmmod;
      if (!holder) return;
      const bound = await boundDevices(env, m);
      if (!bound.length) return env.report?.(ID, nothingBound(ID, m));
      const r = await runStep(env.guest.session, heldRmmodStep(m, holder, env.timeouts));
      await env.record(r);
      const h = parseHeldRmmod(r.result.stdout);
      const { unloaded, ...res } = r.ok
        ? judgeHeld(m.name, h, r.result.durationMs)
        : { unloaded: false, name: `${ID} ${m.name}`, ok: false, failure: r.failure, durationMs: r.result.durationMs, message: r.message };
      env.report?.(ID, { ...res, evidence: res.ok ? undefined : tail(`${r.result.stdout}\n${r.result.stderr}`, 12) });
      if (!unloaded) return;
      // Loaded again, so the test's own rmmod runs as planned.
      const again = await runStep(env.guest.session, insmodStep(m, env.params?.(m) ?? m.params, env.timeouts));
      await env.record(again);
      if (!again.ok)
        env.report?.(ID, { name: `${ID} ${m.name}: insmod again`, ok: false, failure: 'load', durationMs: again.result.durationMs, message: again.message });
    },
    judge: (e) => judgeLifecycle(ID, e),
  }),
};
