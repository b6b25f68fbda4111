// A suite's in-tree dependencies (#25): before the suite's own modules load,
// each built module's `depends=` (modinfo) names the modules it needs; those
// that are not the suite's own are the kernel's, and modprobe loads them, in
// order, with their own dependencies. After the run they come out in
// reverse, those kmodvm loaded only. The TAP shows each as its own step.
import type { Timeouts } from '../core/config.ts';
import { readInside } from '../core/tree-fs.ts';
import type { SshSession } from '../guest/ssh.ts';
import { runStep, type StepRecord, type StepSpec } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import type { LoadedModule } from './test-plan.ts';

const ms = (s: number): number => Math.round(s * 1000);

/** Which kernels have which modules: what a load failure over a missing in-tree module says next. */
export const missingModuleHint = (): string =>
  "the debian-12 and debian-13 images carry their kernel's whole module tree; Debian's cloud kernel (--kernel debian-12-cloud) builds fewer subsystems, and the debug kernel only those docs/devices.md lists";
/** The kernel writes module names with _ where a file name may have -. */
const norm = (n: string): string => n.replace(/-/g, '_');

/** Each module's depends= line and whether each named module is already in the kernel: `KO<TAB>deps` lines, then `loaded NAME` lines. */
export const dependsStep = (modules: readonly LoadedModule[], t: Timeouts): StepSpec => ({
  name: 'in-tree dependencies',
  argv: [
    'sh',
    '-c',
    'for k do printf "%s\\t" "$k"; modinfo -F depends "$k" || echo; done; ls /sys/module | sed "s/^/loaded /"',
    'sh',
    ...modules.map((m) => m.guestKo),
  ],
  timeoutMs: ms(t.command),
  failure: 'load',
});

export interface InTreeDep {
  name: string;
  /** The suite's modules that need it. */
  neededBy: string[];
  /** In the kernel already (built in, or loaded at boot): kmodvm neither loads nor removes it. */
  present: boolean;
}

/** The in-tree modules the suite's modules need, in the order they are first named; the suite's own are left out. */
export function parseDepends(stdout: string, modules: readonly Pick<LoadedModule, 'name' | 'guestKo'>[]): InTreeDep[] {
  const own = new Set(modules.map((m) => norm(m.name)));
  const byKo = new Map(modules.map((m) => [m.guestKo, m.name]));
  const loaded = new Set<string>();
  const out: InTreeDep[] = [];
  for (const line of stdout.split('\n')) {
    if (line.startsWith('loaded ')) {
      loaded.add(norm(line.slice(7).trim()));
      continue;
    }
    const [ko, deps = ''] = line.split('\t');
    const by = byKo.get(ko);
    if (!by) continue;
    for (const d of deps
      .split(',')
      .map((x) => norm(x.trim()))
      .filter(Boolean)) {
      if (own.has(d)) continue;
      const seen = out.find((x) => x.name === d);
      if (seen) seen.neededBy.push(by);
      else out.push({ name: d, neededBy: [by], present: false });
    }
  }
  return out.map((d) => ({ ...d, present: loaded.has(d.name) }));
}

export const modprobeStep = (d: InTreeDep, t: Timeouts): StepSpec => ({
  name: `modprobe ${d.name}`,
  argv: ['modprobe', d.name],
  timeoutMs: ms(t.load),
  failure: 'load',
});
export const modprobeRemoveStep = (name: string, t: Timeouts): StepSpec => ({
  name: `modprobe -r ${name}`,
  argv: ['modprobe', '-r', name],
  timeoutMs: ms(t.load),
  failure: 'load',
});

/** A guest step's record as a check: its name, verdict and time, a message, and the output's last lines when it failed. */
export const resultOf = (r: StepRecord, message?: string): CheckResult => ({
  name: r.name,
  ok: r.ok,
  failure: r.failure,
  durationMs: r.result.durationMs,
  message: message ?? r.message,
  evidence: r.ok ? undefined : `${r.result.stdout}\n${r.result.stderr}`.trim().split('\n').slice(-10).join('\n'),
});

/** The depends kbuild wrote into a module's .mod.c (`MODULE_INFO(depends, "a,b")`); undefined when it wrote none. */
export function modCDepends(text: string): string[] | undefined {
  const m = /^MODULE_INFO\(depends, "([^"]*)"\);$/m.exec(text);
  return m ? m[1].split(',').map(norm).filter(Boolean) : undefined;
}

/** Each module's depends= as the host build wrote it (.mod.c beside each .ko, read inside the build tree); undefined when one has none to read. */
async function hostDepends(modules: readonly LoadedModule[]): Promise<Map<string, string[]> | undefined> {
  const out = new Map<string, string[]>();
  for (const m of modules) {
    if (!m.host) return undefined;
    const text = await readInside(m.host.tree, m.host.ko.replace(/\.ko$/, '.mod.c'), 1 << 20).then(String, () => undefined);
    const deps = text === undefined ? undefined : modCDepends(text);
    if (!deps) return undefined;
    out.set(norm(m.name), deps);
  }
  return out;
}

/** Each module's whole depends= from the guest's probe (the suite's own among them), by module name. */
export function dependsByModule(stdout: string, modules: readonly Pick<LoadedModule, 'name' | 'guestKo'>[]): Map<string, string[]> {
  const byKo = new Map(modules.map((m) => [m.guestKo, norm(m.name)]));
  const out = new Map<string, string[]>();
  for (const line of stdout.split('\n')) {
    const [ko, deps = ''] = line.split('\t');
    const name = byKo.get(ko);
    if (name && !line.startsWith('loaded '))
      out.set(
        name,
        deps
          .split(',')
          .map((x) => norm(x.trim()))
          .filter(Boolean),
      );
  }
  return out;
}

/**
 * Loads what the modules need from the kernel. ok false: a dependency the
 * kernel lacks, named with the modules that need it. `depends` is each
 * module's depends= (for the load order, load-order.ts). When the host
 * build says no module needs the kernel's, no guest step is run (the edit
 * loop pays nothing).
 */
export async function loadInTreeDeps(session: SshSession, modules: readonly LoadedModule[], t: Timeouts) {
  const out = { ok: true, checks: [] as CheckResult[], records: [] as StepRecord[], loaded: [] as string[], depends: new Map<string, string[]>() };
  if (!modules.length) return out;
  const own = new Set(modules.map((m) => norm(m.name)));
  const host = await hostDepends(modules);
  if (host && [...host.values()].every((deps) => deps.every((d) => own.has(d)))) return { ...out, depends: host };
  const probe = await runStep(session, dependsStep(modules, t));
  out.records.push(probe);
  if (!probe.ok) return { ...out, ok: false, checks: [resultOf(probe)] };
  out.depends = dependsByModule(probe.result.stdout, modules);
  for (const d of parseDepends(probe.result.stdout, modules).filter((x) => !x.present)) {
    const r = await runStep(session, modprobeStep(d, t));
    out.records.push(r);
    const why = r.ok
      ? `for ${d.neededBy.join(', ')}`
      : `${d.neededBy.join(', ')} need${d.neededBy.length > 1 ? '' : 's'} ${d.name}, which this kernel does not provide (modprobe: ${r.result.stderr.trim().split('\n').at(-1) ?? r.message}); ${missingModuleHint()}`;
    out.checks.push(resultOf(r, why));
    if (!r.ok) return { ...out, ok: false };
    out.loaded.push(d.name);
  }
  return out;
}

/** After the run: what loadInTreeDeps loaded, in reverse. A dependency still in use (a reference the suite's module leaked) fails. */
export async function unloadInTreeDeps(session: SshSession, loaded: readonly string[], t: Timeouts, record: (r: StepRecord) => Promise<void>) {
  const checks: CheckResult[] = [];
  for (const name of [...loaded].reverse()) {
    const r = await runStep(session, modprobeRemoveStep(name, t));
    await record(r);
    checks.push(resultOf(r));
  }
  return checks;
}
