// --memcheck's leak check at rmmod: each module's text sections read before
// its rmmod, the allocation sites of live objects after the last one
// (verdict/leaks.ts), and any leak written into the guest's kernel log as a
// LEAK_PREFIX line, where the test's log, the splat rules (memcheck-leak) and
// the source lookup find it. SLUB's allocation traces (slub_debug=U) name the
// sites, on a stock kernel and on the debug kernel alike.
import { siteName } from '../../build/ko-debug.ts';
import type { Timeouts } from '../../core/config.ts';
import { type Guest, runStep, type StepRecord } from '../../guest/steps.ts';
import { findLeaks, leakLine, type ModuleLayout, newTraces, parseAllocTraces, parseLayout, type TraceEntry } from '../../verdict/leaks.ts';
import { koInfoOnce } from '../sources.ts';
import { confirmTracesStep, kmsgStep, type LoadedModule, leakScanStep, moduleLayoutStep } from '../test-plan.ts';
import type { CheckRoom, GuestEnv } from './check.ts';

/** The named caches' unnamed sites again, after emptying KASAN's quarantine of them (confirmTracesStep). */
export async function confirmTraces(guest: Guest, caches: readonly string[], t: Timeouts, record: (r: StepRecord) => Promise<void>): Promise<TraceEntry[]> {
  const r = await runStep(guest.session, confirmTracesStep(caches, t));
  await record(r);
  return parseAllocTraces(r.result.stdout);
}

/** Before rmmod: the module's layout, with its section sizes from the host's .ko when there is one. */
async function layoutOf(env: GuestEnv, m: LoadedModule): Promise<ModuleLayout> {
  const r = await runStep(env.guest.session, moduleLayoutStep(m, env.timeouts));
  await env.record(r);
  const info = m.host ? await koInfoOnce(m.host.ko).catch(() => undefined) : undefined;
  return parseLayout(m.name, r.result.stdout, info?.textSizes);
}

/** After the last rmmod: the leaks of the unloaded modules, logged in the guest. Returns how many; `before` is the guest's last scan. */
async function scanLeaks(env: GuestEnv, layouts: readonly ModuleLayout[], modules: readonly LoadedModule[], before: TraceEntry[]) {
  const scan = await runStep(env.guest.session, leakScanStep(env.timeouts));
  await env.record(scan);
  const traces = parseAllocTraces(scan.result.stdout);
  const first = findLeaks(layouts, newTraces(before, traces));
  if (!first.length) return { traces, leaks: 0 };
  const again = await confirmTraces(env.guest, [...new Set(first.map((l) => l.cache))], env.timeouts, env.record);
  const leaks = findLeaks(layouts, newTraces(before, again));
  const lines: string[] = [];
  for (const l of leaks) {
    const host = modules.find((m) => m.name === l.module)?.host;
    const info = host ? await koInfoOnce(host.ko).catch(() => undefined) : undefined;
    // Named as the kernel names a return address: the instruction after the call to the allocator.
    lines.push(leakLine(l, info && siteName(info, l.section, l.offset)));
  }
  if (lines.length) await env.record(await runStep(env.guest.session, kmsgStep(lines, env.timeouts)));
  return { traces, leaks: leaks.length };
}

export const leakCheck: CheckRoom = {
  id: 'memcheck-leak',
  about: '--memcheck: an object a module allocated and left behind at rmmod is a leak, named by its source line',
  wanted: (c) => c.memcheck,
  create: () => {
    // This run's state: the layouts read since the last unload, and each guest's last scan (a module reloaded at
    // the same address would find an earlier test's leak again: only what this test added counts).
    let layouts: ModuleLayout[] = [];
    let last: { guest: Guest; traces: TraceEntry[] } | undefined;
    return {
      id: 'memcheck-leak',
      kernelArgs: ['slub_debug=U'],
      beforeUnload: async (env, m) => {
        const l = await layoutOf(env, m);
        layouts.push(l);
        env.layouts.push(l);
      },
      afterUnload: async (env, modules, clean) => {
        const mine = layouts;
        layouts = [];
        if (!clean || !mine.some((l) => l.sections.length)) return;
        const before = last?.guest.session === env.guest.session ? last.traces : [];
        last = { guest: env.guest, traces: (await scanLeaks(env, mine, modules, before)).traces };
      },
    };
  },
};
