// The source lines of a test's kernel reports: each frame of a module under
// test (verdict/frames.ts) looked up in its host-built .ko (build/ko-debug.ts).
// A module built in the guest has no .ko on the host, and no lines.
import path from 'node:path';
import { type KoInfo, koInfo, siteName, sourceLines } from '../build/ko-debug.ts';
import { bareAddresses, type Frame, moduleFrames, type Sources } from '../verdict/frames.ts';
import type { ModuleLayout } from '../verdict/leaks.ts';
import type { LoadedModule } from './test-plan.ts';

/** The module's .ko, read once per run. */
const infos = new Map<string, Promise<KoInfo>>();
export function koInfoOnce(ko: string): Promise<KoInfo> {
  let p = infos.get(ko);
  if (!p) {
    p = koInfo(ko);
    infos.set(ko, p);
    p.catch(() => infos.delete(ko));
  }
  return p;
}

/** Where a frame is in its .ko: its function's section, and the offset to look up. */
function place(info: KoInfo, f: Frame): { section: string; offset: bigint } | undefined {
  const fn = info.functions.find((s) => s.name === f.func);
  if (!fn) return undefined;
  const offset = fn.value + f.offset - (f.exact || f.offset === 0n ? 0n : 1n);
  return { section: fn.section, offset };
}

/** file:line from addr2line as a Source: the host build's tree is the suite root's copy. */
function toSource(loc: string, tree: string, hostPath: (rel: string) => string): Sources[string] | undefined {
  const colon = loc.lastIndexOf(':');
  const line = Number(loc.slice(colon + 1));
  const file = loc.slice(0, colon);
  if (!Number.isInteger(line) || line <= 0) return undefined;
  const rel = path.relative(tree, file);
  if (rel.startsWith('..') || path.isAbsolute(rel)) return { file, rel: file, line };
  return { file: hostPath(rel), rel, line };
}

/** The source line of every frame of a host-built module in log; hostPath maps a suite path to the user's file. */
interface Lookup {
  key: string;
  module: string;
  section: string;
  offset: bigint;
  site?: string;
}

/** What to look up: the modules' named frames, and bare addresses inside an unloaded module's sections (layouts, read before its rmmod). */
async function lookups(log: string, hosts: ReadonlyMap<string, { ko: string }>, layouts: readonly ModuleLayout[]): Promise<Lookup[]> {
  const out: Lookup[] = [];
  for (const f of moduleFrames(log, new Set(hosts.keys()))) {
    const at = place(await koInfoOnce(hosts.get(f.module)!.ko), f);
    if (at) out.push({ key: f.text, module: f.module, ...at });
  }
  for (const b of bareAddresses(log))
    for (const l of layouts) {
      const s = hosts.has(l.module) && l.sections.find((x) => b.addr >= x.start && b.addr < x.start + x.size);
      if (!s) continue;
      const off = b.addr - s.start;
      const site = siteName(await koInfoOnce(hosts.get(l.module)!.ko), s.name, off);
      out.push({ key: b.text, module: l.module, section: s.name, offset: off - (b.exact || off === 0n ? 0n : 1n), site: site && `${site} [${l.module}]` });
    }
  return out;
}

/** The source line of every frame of a host-built module in log; hostPath maps a suite path to the user's file. */
export async function reportSources(
  log: string,
  modules: readonly LoadedModule[],
  hostPath: (rel: string) => string,
  layouts: readonly ModuleLayout[] = [],
): Promise<Sources> {
  const hosts = new Map(modules.filter((m) => m.host).map((m) => [m.name, m.host!] as const));
  const todo = await lookups(log, hosts, layouts);
  const out: Sources = {};
  for (const group of new Set(todo.map((x) => `${x.module}\0${x.section}`))) {
    const here = todo.filter((x) => `${x.module}\0${x.section}` === group);
    const host = hosts.get(here[0].module)!;
    const locs = await sourceLines(
      host.ko,
      here[0].section,
      here.map((x) => x.offset),
    );
    here.forEach((x, k) => {
      const s = locs[k] && toSource(locs[k]!, host.tree, hostPath);
      if (s) out[x.key] = x.site ? { ...s, site: x.site } : s;
    });
  }
  return out;
}
