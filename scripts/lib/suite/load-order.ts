// The order a suite's own modules load in (#29.2): each after the suite's
// modules its depends= names (kbuild's .mod.c, or modinfo in the guest),
// modules.order (the suite's dirs in order, then each dir's modules.order)
// breaking ties; they unload in reverse. lttng-modules' modules.order is
// not a dependency order. A cycle is a load failure naming the modules in
// it. Pure.
import type { LoadedModule } from './test-plan.ts';

const norm = (n: string): string => n.replace(/-/g, '_');

export type Ordered = { ok: true; modules: LoadedModule[] } | { ok: false; cycle: string[] };

/** The modules in an order where each comes after those of them it depends on; the given order where nothing forces another. */
export function orderByDepends<M extends Pick<LoadedModule, 'name'>>(
  modules: readonly M[],
  depends: ReadonlyMap<string, readonly string[]>,
): { ok: true; modules: M[] } | { ok: false; cycle: string[] } {
  const byName = new Map(modules.map((m) => [norm(m.name), m]));
  const out: M[] = [];
  const state = new Map<string, 'visiting' | 'done'>();
  const visit = (name: string, path: string[]): string[] | undefined => {
    if (state.get(name) === 'done') return undefined;
    if (state.get(name) === 'visiting') return [...path.slice(path.indexOf(name)), name];
    state.set(name, 'visiting');
    // Its own dependencies first, in the suite's order (ties broken by modules.order).
    const deps = (depends.get(name) ?? []).map(norm).filter((d) => byName.has(d) && d !== name);
    deps.sort((a, b) => modules.indexOf(byName.get(a)!) - modules.indexOf(byName.get(b)!));
    for (const d of deps) {
      const cycle = visit(d, [...path, name]);
      if (cycle) return cycle;
    }
    state.set(name, 'done');
    out.push(byName.get(name)!);
    return undefined;
  };
  for (const m of modules) {
    const cycle = visit(norm(m.name), []);
    if (cycle) return { ok: false, cycle };
  }
  return { ok: true, modules: out };
}
