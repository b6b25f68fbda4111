// --memcheck's leak check at rmmod, pure. With slub_debug=U, SLUB keeps the
// allocation site of every live object; /sys/kernel/debug/slab/*/alloc_traces
// lists them by site. Before rmmod we read where the module's text sections
// are; after it, a site still listed inside one of them is an object the
// module allocated and nobody freed: a leak. Once the module is gone, %pS
// prints such a site as a bare address, so only those lines are read.
// The leak is written into the guest's kernel log as a line of our own
// (LEAK_PREFIX), naming the site as func+off/size [module], so the splat rules
// and the source-line lookup treat it as they treat any kernel report.

/** Where one of the module's text sections was while it was loaded. */
export interface SectionAt {
  name: string;
  start: bigint;
  size: bigint;
}

export interface ModuleLayout {
  module: string;
  sections: SectionAt[];
}

/** One allocation site of alloc_traces whose symbol the kernel could not name. */
export interface TraceEntry {
  cache: string;
  count: number;
  addr: bigint;
  /** age=… pid=… cpus=…, as the kernel printed it. */
  detail: string;
}

export interface Leak {
  module: string;
  cache: string;
  count: number;
  section: string;
  offset: bigint;
  detail: string;
}

export const LEAK_PREFIX = 'kmodvm-memcheck: leak:';

const SYS_SECTION = '/sys/module/';
const hex = (s: string): bigint | undefined => (/^0x[0-9a-f]+$/i.test(s) ? BigInt(s) : undefined);

/**
 * The module's section addresses and its core from /proc/modules, as the
 * guest step printed them: `/sys/module/M/sections/.text:0xffffffffc0233000`
 * lines, then `M 16384 0 - Live 0xffffffffc0233000 (OE)`.
 */
export function parseLayout(module: string, text: string, sizes?: ReadonlyMap<string, bigint>): ModuleLayout {
  const sections: SectionAt[] = [];
  for (const line of text.split('\n')) {
    if (line.startsWith(SYS_SECTION)) {
      const colon = line.lastIndexOf(':');
      const name = line.slice(line.lastIndexOf('/', colon) + 1, colon);
      const start = hex(line.slice(colon + 1).trim());
      const size = sizes?.get(name);
      if (start !== undefined && size) sections.push({ name, start, size });
    } else if (line.startsWith(`${module} `) && !sizes) {
      // No .ko on the host (a guest build): the module's core, from /proc/modules.
      const f = line.trim().split(/\s+/);
      const start = hex(f[5] ?? '');
      if (start !== undefined && /^\d+$/.test(f[1])) sections.push({ name: '(core)', start, size: BigInt(f[1]) });
    }
  }
  return { module, sections };
}

/** The header lines of `grep -H` over alloc_traces whose site is a bare address: `…/kmalloc-128/alloc_traces:      1 0xffffffffc020607c age=…`. */
export function parseAllocTraces(text: string): TraceEntry[] {
  const out: TraceEntry[] = [];
  for (const line of text.split('\n')) {
    const tag = '/alloc_traces:';
    const at = line.indexOf(tag);
    if (at < 0) continue;
    const cache = line.slice(line.lastIndexOf('/', at - 1) + 1, at);
    const f = line
      .slice(at + tag.length)
      .trim()
      .split(/\s+/);
    const addr = hex(f[1] ?? '');
    if (!/^\d+$/.test(f[0] ?? '') || addr === undefined) continue;
    out.push({ cache, count: Number(f[0]), addr, detail: f.slice(2).join(' ') });
  }
  return out;
}

/** The sites added since an earlier scan (new, or with more objects): a leak seen at an earlier rmmod is not this one's. */
export function newTraces(before: readonly TraceEntry[], after: readonly TraceEntry[]): TraceEntry[] {
  const had = new Map(before.map((t) => [`${t.cache}\0${t.addr}`, t.count]));
  return after.filter((t) => t.count > (had.get(`${t.cache}\0${t.addr}`) ?? 0));
}

/** The live objects whose allocation site lies in one of the unloaded modules' sections. */
export function findLeaks(layouts: readonly ModuleLayout[], traces: readonly TraceEntry[]): Leak[] {
  const out: Leak[] = [];
  for (const t of traces)
    for (const l of layouts) {
      const s = l.sections.find((x) => t.addr >= x.start && t.addr < x.start + x.size);
      if (s) out.push({ module: l.module, cache: t.cache, count: t.count, section: s.name, offset: t.addr - s.start, detail: t.detail });
    }
  return out;
}

/** The kernel-log line for a leak; site is func+off/size when the .ko names it. */
export function leakLine(l: Leak, site?: string): string {
  const objects = `${l.count} object${l.count === 1 ? '' : 's'} of ${l.cache}`;
  const where = site ? `${site} [${l.module}]` : `${l.section}+0x${l.offset.toString(16)} [${l.module}]`;
  return `${LEAK_PREFIX} ${objects} still allocated after rmmod ${l.module}, allocated at ${where} (${l.detail})`;
}
