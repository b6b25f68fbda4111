// No splat: the splat rules (rules/splat.json and the suite's --splat-rules)
// over the test's kernel log and serial console, with the source line of the
// first module frame. Every memory check reports through it: SLUB's and
// KASAN's reports, and the leak check's lines, are splats. Also the run-wide
// check over the whole log (noSplatCheck), and --fail-nth's (failNthSplatCheck).
import { splitInjections } from '../../verdict/fail-nth.ts';
import { firstSource, type Sources } from '../../verdict/frames.ts';
import type { CheckResult } from '../../verdict/model.ts';
import { type CompiledRules, findSplats, formatSplat } from '../../verdict/splat.ts';
import type { CheckRoom } from './check.ts';

/** The splat kinds of a leak found at unload: the test fails, the kernel stays trusted. */
export const LEAK_KINDS = ['memcheck-leak', 'kmemleak'];
/** How many log lines after a splat's first the source lookup reads: a kernel BUG's call trace follows its register dump. */
const TRACE_LINES = 80;

export function noSplatCheck(kernelLog: string, serial: string, rules: CompiledRules, sources?: Sources, o: { ownDump?: boolean } = {}): CheckResult {
  const splats = [...findSplats(kernelLog, rules, 'dmesg', o), ...findSplats(serial, rules, 'serial.log', o)];
  if (!splats.length) return { name: 'no-splat', ok: true, durationMs: 0 };
  const s = splats[0];
  const from = s.source === 'dmesg' ? kernelLog : serial;
  const at = sources && firstSource(from.split('\n').slice(s.lineNo - 1, s.lineNo - 1 + TRACE_LINES), sources);
  return {
    splatId: s.id,
    name: 'no-splat',
    ok: false,
    failure: 'splat',
    durationMs: 0,
    message: `${s.id}: ${s.line}${at ? ` (${at.source.rel}:${at.source.line})` : ''}`,
    evidence: `${formatSplat(s)}${at ? `\nsource: ${at.source.rel}:${at.source.line} (${at.source.site ? `${at.frame}: ${at.source.site}, unloaded` : at.frame})` : ''}`,
    ...(at ? { annotations: [{ file: at.source.file, line: at.source.line, message: `${s.id}: ${s.line}` }] } : {}),
  };
}

/** The run-wide splat check of a --fail-nth run: the injections' own reports (and the allocator's warnings after them) on the console are what it asked for. */
export function failNthSplatCheck(kernelLog: string, serial: string, rules: CompiledRules, _sources?: Sources, o: { ownDump?: boolean } = {}): CheckResult {
  return noSplatCheck(splitInjections(kernelLog).rest, splitInjections(serial).rest, rules, undefined, o);
}

export const noSplat: CheckRoom = {
  id: 'no-splat',
  about: 'no splat (oops, BUG, WARN, KASAN, SLUB, lockdep, a leak …) in the kernel log or on the console',
  wanted: () => true,
  create: () => ({
    id: 'no-splat',
    judge: (e, ctx) => {
      const r = noSplatCheck(e.kernelLog, e.serial, ctx.rules, e.sources, { ownDump: ctx.hung });
      // A leak fails the test but leaves the kernel as sound as it was: the next test needs no fresh guest.
      return { results: [r], untrusted: r.ok || LEAK_KINDS.includes(r.splatId ?? '') ? undefined : r.message?.trim() };
    },
  }),
};
