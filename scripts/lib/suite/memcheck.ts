// --memcheck's leak check at rmmod, on the guest: each module's text sections
// read before its rmmod, the allocation sites of live objects after the last
// one (verdict/leaks.ts), and any leak written into the guest's kernel log,
// where the test's log, the splat rules and the source lookup find it.

import { siteName } from '../build/ko-debug.ts';
import type { Timeouts } from '../core/config.ts';
import { runStep, type StepRecord } from '../guest/steps.ts';
import { findLeaks, leakLine, type ModuleLayout, newTraces, parseAllocTraces, parseLayout, type TraceEntry } from '../verdict/leaks.ts';
import { koInfoOnce } from './sources.ts';
import { confirmTracesStep, kmsgStep, type LoadedModule, leakScanStep, moduleLayoutStep } from './test-plan.ts';
import type { Guest } from './types.ts';

type Record = (r: StepRecord) => Promise<void>;

/** Each guest's last leak scan. */
const lastScan = new WeakMap<object, TraceEntry[]>();

/** Before rmmod: the module's layout, with its section sizes from the host's .ko when there is one. */
export async function layoutBeforeUnload(guest: Guest, m: LoadedModule, t: Timeouts, record: Record): Promise<ModuleLayout> {
  const r = await runStep(guest.session, moduleLayoutStep(m, t));
  await record(r);
  const info = m.host ? await koInfoOnce(m.host.ko).catch(() => undefined) : undefined;
  return parseLayout(m.name, r.result.stdout, info?.textSizes);
}

/** The named caches' unnamed sites again, after emptying KASAN's quarantine of them (confirmTracesStep). */
export async function confirmTraces(guest: Guest, caches: readonly string[], t: Timeouts, record: Record): Promise<TraceEntry[]> {
  const r = await runStep(guest.session, confirmTracesStep(caches, t));
  await record(r);
  return parseAllocTraces(r.result.stdout);
}

/** After the last rmmod: the leaks of the unloaded modules, logged in the guest as LEAK_PREFIX lines. Returns how many. */
export async function leakCheck(
  guest: Guest,
  layouts: readonly ModuleLayout[],
  modules: readonly LoadedModule[],
  t: Timeouts,
  record: Record,
): Promise<number> {
  if (!layouts.some((l) => l.sections.length)) return 0;
  const scan = await runStep(guest.session, leakScanStep(t));
  await record(scan);
  // A module reloaded at the same address would find an earlier test's leak again: only what this test added counts.
  const traces = parseAllocTraces(scan.result.stdout);
  const before = lastScan.get(guest.session) ?? [];
  lastScan.set(guest.session, traces);
  const first = findLeaks(layouts, newTraces(before, traces));
  if (!first.length) return 0;
  const leaks = findLeaks(layouts, newTraces(before, await confirmTraces(guest, [...new Set(first.map((l) => l.cache))], t, record)));
  if (!leaks.length) return 0;
  const lines: string[] = [];
  for (const l of leaks) {
    const host = modules.find((m) => m.name === l.module)?.host;
    const info = host ? await koInfoOnce(host.ko).catch(() => undefined) : undefined;
    // Named as the kernel names a return address: the instruction after the call to the allocator.
    lines.push(leakLine(l, info && siteName(info, l.section, l.offset)));
  }
  await record(await runStep(guest.session, kmsgStep(lines, t)));
  return leaks.length;
}
