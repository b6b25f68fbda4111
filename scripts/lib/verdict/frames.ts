// Stack frames of the modules under test in a kernel report, pure. The kernel
// names code as func+0xoff/0xsize [module]; with the module's .ko that
// becomes a source line (build/ko-debug.ts), kept with the evidence as a
// Sources map so a saved run is judged again the same way.

import { strip } from './splat.ts';

export interface Frame {
  /** As the kernel printed it: plant_leak+0xc/0x1b [planted]. */
  text: string;
  func: string;
  offset: bigint;
  module: string;
  /** The faulting instruction itself (a RIP, KFENCE's "in"); other frames are return addresses, looked up one byte back. KASAN's "in" is its caller's return address too (_RET_IP_): one byte back is the call to the check, on the access's line, and 6.12's "double-free in f+0x…" is the return from kfree(), whose next instruction is on the next line. */
  exact: boolean;
}

/** A frame's place in the module's sources. */
export interface Source {
  /** The file on the host, in the suite's own tree (for annotations). */
  file: string;
  /** The file relative to the suite root. */
  rel: string;
  line: number;
  /** For a bare address (a module unloaded before the kernel printed it): the function it was in, as func+off/size. */
  site?: string;
}

export type Sources = Record<string, Source>;

const FRAME = /([A-Za-z_][\w.$]*)\+0x([0-9a-f]+)\/0x[0-9a-f]+ \[(\w+)\]/g;
/** A kernel text address the kernel could not name: once the module is unloaded, %pS prints its code so. */
const BARE = /\b0xffffffff[0-9a-f]{8}\b/g;
const EXACT = /RIP: |BUG: KFENCE: /;

/** The bare kernel addresses in log, each once, with whether the line gives the faulting instruction. */
export function bareAddresses(log: string): { text: string; addr: bigint; exact: boolean }[] {
  const seen = new Set<string>();
  const out: { text: string; addr: bigint; exact: boolean }[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes('0xffffffff')) continue;
    const exact = EXACT.test(line);
    for (const m of line.slice(0, 4096).matchAll(BARE))
      if (!seen.has(m[0])) {
        seen.add(m[0]);
        out.push({ text: m[0], addr: BigInt(m[0]), exact });
      }
  }
  return out;
}

/** The frames in log that belong to one of modules, each text once, in order. */
export function moduleFrames(log: string, modules: ReadonlySet<string>): Frame[] {
  const seen = new Set<string>();
  const out: Frame[] = [];
  for (const line of log.split('\n')) {
    if (!line.includes(' [')) continue;
    const exact = EXACT.test(line);
    for (const m of line.slice(0, 4096).matchAll(FRAME)) {
      if (!modules.has(m[3]) || seen.has(m[0])) continue;
      seen.add(m[0]);
      out.push({ text: m[0], func: m[1], offset: BigInt(`0x${m[2]}`), module: m[3], exact });
    }
  }
  return out;
}

/**
 * The frame that says where a report happened, from its lines (the first is
 * the report's own): a frame in that first line (KASAN's "in f+0x…"), else the
 * first after "Call Trace:" (SLUB's and KASAN's allocation and free stacks
 * come before it), else the first of a free stack (closer to a use after
 * free than the allocation), else the first; in the suite's own files before
 * inlined kernel headers such as refcount.h.
 */
export function firstSource(lines: readonly string[], sources: Sources | undefined): { frame: string; source: Source } | undefined {
  if (!sources) return undefined;
  const found: { frame: string; source: Source; rank: number }[] = [];
  let inTrace = false;
  let freed = false;
  lines.forEach((line, k) => {
    const text = strip(line);
    if (/Call Trace:/.test(text)) inTrace = true;
    if (/^(Freed|Allocated) (in|by)/.test(text)) freed = text.startsWith('Freed');
    for (const m of [...line.slice(0, 4096).matchAll(FRAME), ...line.slice(0, 4096).matchAll(BARE)].sort((a, b) => a.index - b.index)) {
      const source = sources[m[0]];
      if (!source) continue;
      const where = k === 0 ? 0 : inTrace ? 1 : freed ? 2 : 3;
      // "? f+0x…": a word on the stack the unwinder could not vouch for.
      const unsure = line.slice(Math.max(0, m.index - 2), m.index) === '? ' ? 8 : 0;
      found.push({ frame: m[0], source, rank: unsure + (source.rel.startsWith('/') ? 4 : 0) + where });
    }
  });
  const best = found.reduce<(typeof found)[number] | undefined>((b, f) => (!b || f.rank < b.rank ? f : b), undefined);
  return best && { frame: best.frame, source: best.source };
}
