// A debug kernel's recipe: data in qemu/debug-kernels/<name>.json, validated
// here, with its kconfig fragment beside it. Pure but for the file reads: the
// cache key, the build's commands (what --dry-run prints) and the check that
// the final .config has every option the fragment asks for.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { parseData } from '../core/datafile.ts';
import { KmodvmError } from '../core/errors.ts';

/** Bumped when the debug-kernel build changes what it produces. */
export const DEBUG_KERNEL_BUILDER = 2;

const fragmentName = z.string().regex(/^[\w.-]+\.config$/, 'must be a file name ending in .config, beside the recipe');
const requirement = z.strictObject({ probe: z.string().min(1), pkg: z.string().min(1), why: z.string().min(1) });

export const debugRecipeSchema = z.strictObject({
  $comment: z.string().optional(),
  /** The image whose root file system the kernel boots (qemu/kernels/<image>.json). */
  image: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'must name a recipe in qemu/kernels/'),
  /** The Debian suite the source package comes from, and the package. */
  suite: z.string().regex(/^[a-z][a-z0-9-]*$/, 'must be a Debian suite name such as bookworm'),
  sourcePackage: z.string().regex(/^linux-source-[0-9.]+$/, 'must be a linux-source-X.Y package'),
  /** make targets that make the base .config, before the fragment is merged (tinyconfig). */
  configBase: z.array(z.string().regex(/^[a-z0-9_.]+config$/, 'must be a kconfig make target such as tinyconfig')).min(1),
  /** The kconfig fragment, beside this file; or several, merged in order (a later one's option wins). */
  fragment: z.union([fragmentName, z.array(fragmentName).min(1)]),
  /** Boot parameters for the checkers the kernel has. */
  kernelArgs: z.array(z.string().min(1)),
  /** What the build needs on the host, for the preflight. */
  hostPackages: z.array(requirement).min(1),
});

export type DebugRecipe = Omit<z.infer<typeof debugRecipeSchema>, '$comment'> & { name: string; file: string; fragmentText: string };

const HINT = 'fix the debug-kernel recipe; see docs/debug-kernel.md';

export const debugRecipeFile = (root: string, name: string): string => path.join(root, 'qemu/debug-kernels', `${name}.json`);

export function loadDebugRecipe(root: string, name: string): DebugRecipe {
  const file = debugRecipeFile(root, name);
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KmodvmError('usage', `cannot read the debug-kernel recipe ${file}: ${(e as Error).message}`, { hint: HINT });
  }
  const { value } = parseData(text, file, debugRecipeSchema, HINT);
  const { $comment, ...r } = value;
  const fragmentText = fragmentsOf(r.fragment)
    .map((f) => {
      const fragmentFile = path.join(path.dirname(file), f);
      try {
        return readFileSync(fragmentFile, 'utf8');
      } catch (e) {
        throw new KmodvmError('usage', `${file}: field \`fragment\`: cannot read ${fragmentFile}: ${(e as Error).message}`, { hint: HINT });
      }
    })
    .join('');
  return { ...r, name, file, fragmentText };
}

/** The recipe's fragment files, in merge order. */
export const fragmentsOf = (f: string | readonly string[]): readonly string[] => (typeof f === 'string' ? [f] : f);

/** The cache key: the recipe, its fragment, the builder, and the host compiler the kernel (and every module after it) is built with. */
export function debugKernelKey(r: DebugRecipe, compiler: string): string {
  const h = createHash('sha256');
  for (const part of [String(DEBUG_KERNEL_BUILDER), JSON.stringify({ ...r, file: undefined }), compiler]) h.update(`${part}\0`);
  return h.digest('hex').slice(0, 16);
}

/** CONFIG_X=v lines of a fragment or a .config; `# CONFIG_X is not set` is X=n. */
export function parseKconfig(text: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const unset = /^# (CONFIG_\w+) is not set$/.exec(line);
    if (unset) m.set(unset[1], 'n');
    else if (line.startsWith('CONFIG_')) {
      const eq = line.indexOf('=');
      if (eq > 0) m.set(line.slice(0, eq), line.slice(eq + 1));
    }
  }
  return m;
}

/** The options the fragment asks for that the final .config does not have (kconfig drops what a dependency forbids, silently). */
export function unmetOptions(fragment: string, finalConfig: string): string[] {
  const want = parseKconfig(fragment);
  const got = parseKconfig(finalConfig);
  return [...want].filter(([k, v]) => (got.get(k) ?? 'n') !== v).map(([k, v]) => `${k}: asked for ${v}, got ${got.get(k) ?? 'n (absent)'}`);
}

/** The build's commands, in order, each run in the kernel tree (the sandbox's one writable dir). */
export function buildCommands(r: DebugRecipe, o: { tree: string; fragmentFile: string; jobs: number }): [string, string[]][] {
  const make = (...args: string[]): [string, string[]] => ['make', ['-C', o.tree, 'ARCH=x86_64', ...args]];
  return [
    make(...r.configBase),
    [path.join(o.tree, 'scripts/kconfig/merge_config.sh'), ['-m', '-O', o.tree, path.join(o.tree, '.config'), o.fragmentFile]],
    make('olddefconfig'),
    make(`-j${o.jobs}`, 'bzImage', 'modules'),
  ];
}

/** Where the kernel's own modules are installed, inside the tree (the sandbox's one writable dir); `lib/modules/<version>/` under it. */
export const MODULES_ROOT = '.kmodvm-modules';

/** The kernel's modules, installed stripped with their modules.dep (depmod), for the guest's /lib/modules/<version>. */
export function installCommand(tree: string): [string, string[]] {
  return ['make', ['-C', tree, 'ARCH=x86_64', `INSTALL_MOD_PATH=${path.join(tree, MODULES_ROOT)}`, 'INSTALL_MOD_STRIP=1', 'modules_install']];
}
