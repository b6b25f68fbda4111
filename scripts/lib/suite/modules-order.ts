// Module names come from kbuild: the modules.order a module dir's make
// writes lists every module it built, in order. Before 6.2 its lines name
// the .ko, from 6.2 on the .o; an M= build of 6.1 writes absolute paths.
import path from 'node:path';

export interface BuiltModule {
  /** The module's name as the kernel knows it (dashes become underscores, as kbuild's KBUILD_MODNAME does). */
  name: string;
  /** The .ko, relative to the module dir. */
  ko: string;
}

/** The modules a modules.order lists, with their .ko relative to modDir (where make's M= pointed). */
export function modulesFromOrder(text: string, modDir: string): BuiltModule[] {
  const out: BuiltModule[] = [];
  for (const raw of text.split('\n')) {
    let line = raw.trim();
    if (!line) continue;
    if (line.startsWith('kernel/')) line = line.slice('kernel/'.length); // before 5.4: kernel/<path>
    const abs = path.isAbsolute(line) ? line : path.join(modDir, line);
    const ko = path.relative(modDir, abs).replace(/\.o$/, '.ko');
    if (ko.startsWith('..') || !ko.endsWith('.ko')) continue;
    const name = path.basename(ko, '.ko').replace(/-/g, '_');
    if (!out.some((m) => m.name === name)) out.push({ name, ko });
  }
  return out;
}

/** A module name against a name or glob (* any run of characters, ? one), as the kernel writes names (_ for -). */
export function nameMatches(name: string, pattern: string): boolean {
  const norm = (s: string): string => s.replace(/-/g, '_');
  const re = new RegExp(`^${[...norm(pattern)].map((ch) => (ch === '*' ? '.*' : ch === '?' ? '.' : ch.replace(/[.+^${}()|[\]\\]/g, '\\$&'))).join('')}$`);
  return re.test(norm(name));
}

/** Whether a module of a dir loads: one its `load:` names (all, without it), and none its `skip:` names (#29.10). */
export const loads = (name: string, dir: { load?: readonly string[]; skip?: readonly string[] }): boolean =>
  (!dir.load || dir.load.some((p) => nameMatches(name, p))) && !(dir.skip ?? []).some((p) => nameMatches(name, p));

/**
 * A dir's modules in the order its load: list names them (the first pattern
 * each matches), modules.order within one pattern: the suite's way to say
 * an order depends= cannot (lttng's clock plugin must load before the
 * tracer takes the clock). Stable; without load:, modules.order.
 */
export function inLoadOrder<M extends { name: string }>(modules: readonly M[], dir: { load?: readonly string[] }): M[] {
  const rank = (name: string): number => dir.load?.findIndex((p) => nameMatches(name, p)) ?? 0;
  return [...modules].sort((a, b) => rank(a.name) - rank(b.name));
}
