// --memcheck's leak check at rmmod, on the guest: each module's text sections
// read before its rmmod, the allocation sites of live objects after the last
// one (verdict/leaks.ts), and any leak written into the guest's kernel log,
// where the test's log, the splat rules and the source lookup find it.
import type { Timeouts } from '../core/config.ts';
import { runStep, type StepRecord } from '../guest/steps.ts';
import { findLeaks, leakLine, newTraces, parseAllocTraces, parseLayout, type ModuleLayout, type TraceEntry } from '../verdict/leaks.ts';
import { siteName } from '../build/ko-debug.ts';
import { koInfoOnce } from './sources.ts';
import { kmsgStep, leakScanStep, moduleLayoutStep, type LoadedModule } from './test-plan.ts';
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
  const leaks = findLeaks(layouts, newTraces(lastScan.get(guest.session) ?? [], traces));
  lastScan.set(guest.session, traces);
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
