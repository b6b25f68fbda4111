// Which config option a kernel would need to export a symbol it does not
// (#25.7): a module built against the debug kernel (tinyconfig and a
// fragment) that calls into a subsystem the kernel leaves out fails at
// modpost with `"snd_card_new" [...] undefined!`; the message should name
// CONFIG_SND. At the kernel's build, while its sources are there, each
// EXPORT_SYMBOL of a .c file that was not built is mapped to the option
// its kbuild Makefile builds that file under (through composite objects
// and the parent directories' `obj-$(CONFIG_X) += dir/`), and kept beside
// the tree. Pure but for exportMap's reads.
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { run } from '../core/proc.ts';

/** Where the map is kept in a kernel tree; a tree without it (Debian's headers) gets no such hint. */
export const EXPORTS_MAP = '.kmodvm-missing-exports.json';

export interface MissingExport {
  /** The options that build the file, the nearest first (a composite object's part, its object, its directory). */
  configs: string[];
  file: string;
}

/** A Makefile's assignments, continuation lines joined: [left-hand side, right-hand side words]. */
function assignments(makefile: string): [string, string[]][] {
  const out: [string, string[]][] = [];
  for (const line of makefile.replace(/\\\n/g, ' ').split('\n')) {
    const m = /^\s*([\w$()-]+)\s*[:+]?=(.*)$/.exec(line);
    if (m) out.push([m[1], m[2].split(/\s+/).filter(Boolean)]);
  }
  return out;
}

const configOf = (lhs: string): string | undefined => /\$\((CONFIG_\w+)\)/.exec(lhs)?.[1];

/**
 * The options under which a Makefile builds `name` (an object like x.o, or
 * a subdirectory like x/): `obj-$(CONFIG_X) += x.o`, or x.o a part of a
 * composite (`c-objs += x.o`, `c-$(CONFIG_Y) += x.o`) that is itself
 * built so. Empty when the Makefile builds it unconditionally (obj-y) or
 * not at all.
 */
export function configsFor(makefile: string, name: string): { configs: string[]; found: boolean } {
  const rules = assignments(makefile);
  const direct = (n: string): { configs: string[]; found: boolean } | undefined => {
    for (const [lhs, words] of rules)
      if (lhs.startsWith('obj-') && words.includes(n)) {
        const c = configOf(lhs);
        return { configs: c ? [c] : [], found: true };
      }
    return undefined;
  };
  const d = direct(name);
  if (d) return d;
  for (const [lhs, words] of rules) {
    const comp = /^([\w-]+?)-(objs|y|\$\((CONFIG_\w+)\))$/.exec(lhs);
    if (!comp || comp[1] === 'obj' || !words.includes(name)) continue;
    const parent = direct(`${comp[1]}.o`);
    if (parent) return { configs: [...(comp[3] ? [comp[3]] : []), ...parent.configs], found: true };
  }
  return { configs: [], found: false };
}

/** The options a source file of the tree is built under: its Makefile's, then each parent directory's for it, up to the top. */
export async function configsOfFile(tree: string, rel: string, read: (f: string) => Promise<string | undefined>): Promise<string[]> {
  const out: string[] = [];
  let dir = path.dirname(rel);
  let name = `${path.basename(rel, '.c')}.o`;
  while (dir && dir !== '.') {
    const mk = (await read(path.join(tree, dir, 'Makefile'))) ?? (await read(path.join(tree, dir, 'Kbuild'))) ?? '';
    const r = configsFor(mk, name);
    out.push(...r.configs.filter((c) => !out.includes(c)));
    name = `${path.basename(dir)}/`;
    dir = path.dirname(dir);
  }
  return out;
}

/** `path:EXPORT_SYMBOL_GPL(name` lines (grep -o) as [file, symbol]. */
export function parseExports(grepOut: string, tree: string): [string, string][] {
  const out: [string, string][] = [];
  for (const line of grepOut.split('\n')) {
    const m = /^(.+\.c):EXPORT_SYMBOL\w*\((\w+)$/.exec(line);
    if (m) out.push([path.relative(tree, m[1]), m[2]]);
  }
  return out;
}

/** The symbols of Module.symvers (what the kernel does export). */
export const symversNames = (text: string): Set<string> =>
  new Set(
    text
      .split('\n')
      .map((l) => l.split('\t')[1])
      .filter(Boolean),
  );

/** The map for a kernel tree with its sources and Module.symvers: each symbol its sources export but the build did not, with the options that would. */
export async function exportMap(tree: string): Promise<Record<string, MissingExport>> {
  const built = symversNames(await readFile(path.join(tree, 'Module.symvers'), 'utf8'));
  const dirs = ['arch', 'block', 'crypto', 'drivers', 'fs', 'kernel', 'lib', 'mm', 'net', 'security', 'sound', 'virt'].filter((d) =>
    existsSync(path.join(tree, d)),
  );
  const g = await run('grep', ['-rHoE', '--include=*.c', 'EXPORT_SYMBOL(_GPL|_NS|_NS_GPL)?\\([A-Za-z0-9_]+', ...dirs.map((d) => path.join(tree, d))], {
    timeoutMs: 10 * 60_000,
  });
  const makefiles = new Map<string, string | undefined>();
  const read = async (f: string): Promise<string | undefined> => {
    if (!makefiles.has(f)) makefiles.set(f, await readFile(f, 'utf8').catch(() => undefined));
    return makefiles.get(f);
  };
  const out: Record<string, MissingExport> = {};
  for (const [file, sym] of parseExports(g.stdout, tree)) {
    if (built.has(sym) || out[sym]) continue;
    const configs = await configsOfFile(tree, file, read);
    if (configs.length) out[sym] = { configs, file };
  }
  return out;
}

/** modpost's undefined symbols in a build's output. */
export const undefinedSymbols = (output: string): string[] => [...new Set([...output.matchAll(/modpost: "(\w+)" \[[^\]]*\] undefined!/g)].map((m) => m[1]))];

/** What a failed build against a tree with the map says next: each undefined symbol the kernel could export, with the options that would. */
export async function missingConfigHint(kdir: string, output: string, kernel: string): Promise<string | undefined> {
  const syms = undefinedSymbols(output);
  if (!syms.length) return undefined;
  const map = (await readFile(path.join(kdir, EXPORTS_MAP), 'utf8').then(JSON.parse, () => undefined)) as Record<string, MissingExport> | undefined;
  if (!map) return undefined;
  const lines = syms.filter((s) => map[s]).map((s) => `${s} (${map[s].file}) needs ${map[s].configs.join(' and ')}`);
  if (!lines.length) return undefined;
  return `${kernel} is built without what this module uses:\n${lines.map((l) => `  ${l}`).join('\n')}\nnext: build against a kernel with ${[...new Set(syms.flatMap((s) => map[s]?.configs.slice(0, 1) ?? []))].join(', ')} (the debian-12 image's kernel has the usual ones; docs/debug-kernel.md lists what the debug kernel carries)`;
}
