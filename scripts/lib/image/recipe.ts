// The image recipe: data in qemu/kernels/<kernel>.json, validated here; its hash is the
// cache key; mmdebstrapArgs() turns it into an argument list. Pure but for
// loadRecipe() and the file reads in recipeInputs().
import { createHash } from 'node:crypto';
import { lstatSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import { fieldName, parseData } from '../core/datafile.ts';
import { KmodvmError } from '../core/errors.ts';

/** Bumped when the image-building code changes what it produces. */
export const BUILDER_VERSION = 7;

/** The kernel metapackages a recipe can name: Debian's amd64 flavours. */
export const KERNEL_PACKAGES = ['linux-image-amd64', 'linux-image-cloud-amd64', 'linux-image-rt-amd64'];

const strList = z.array(z.string().min(1), 'must be a list of non-empty strings');

/** The recipe file's schema; its type is Recipe. */
export const recipeSchema = z.strictObject({
  $comment: z.string().optional(),
  suite: z.string('must be a Debian suite name such as bookworm').regex(/^[a-z][a-z0-9-]*$/, 'must be a Debian suite name such as bookworm'),
  variant: z.enum(['essential', 'apt', 'minbase', 'required', 'important', 'standard'], 'must be an mmdebstrap variant'),
  packages: strList
    .refine((ps) => ps.every((p) => /^[a-z0-9][a-z0-9+.-]+$/.test(p)), {
      error: (i) => `has an invalid package name ${JSON.stringify((i.input as string[]).find((p) => !/^[a-z0-9][a-z0-9+.-]+$/.test(p)))}`,
    })
    // A Debian amd64 kernel flavour: generic, cloud (ext4 built in) or rt.
    .refine((ps) => ps.some((p) => KERNEL_PACKAGES.includes(p)), `must include a kernel: ${KERNEL_PACKAGES.join(', ')}`)
    .refine((ps) => ['openssh-server', 'busybox-static', 'kmod'].every((n) => ps.includes(n)), {
      error: (i) => `must include ${['openssh-server', 'busybox-static', 'kmod'].find((n) => !(i.input as string[]).includes(n))}`,
    }),
  dpkgPathExclude: strList,
  /** Modules initramfs-tools puts in the stock initrd (MODULES=list). */
  initramfsToolsModules: strList,
  /** Modules the lean initrd loads, by name; dependencies are added from modules.dep. */
  initrdModules: strList,
  kernelCmdline: strList,
  imageSizeMiB: z
    .number('must be a whole number of MiB, at least 256')
    .int('must be a whole number of MiB, at least 256')
    .min(256, 'must be a whole number of MiB, at least 256'),
});

export type Recipe = Omit<z.infer<typeof recipeSchema>, '$comment'>;

const HINT = 'fix the recipe file; see docs/image.md';

export function validateRecipe(raw: unknown, file = 'recipe'): Recipe {
  if (!raw || typeof raw !== 'object') throw new KmodvmError('usage', `recipe ${file}: field \`(root)\` must be a JSON object`, { hint: HINT });
  const r = recipeSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new KmodvmError('usage', `recipe ${file}: field \`${fieldName(i.path) || '(root)'}\` ${i.message}`, { hint: HINT });
  }
  const { $comment, ...recipe } = r.data;
  return recipe;
}

export function loadRecipe(file: string): Recipe {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    throw new KmodvmError('usage', `cannot read the recipe ${file}: ${(e as Error).message}`, { hint: HINT });
  }
  const { value } = parseData(text, file, recipeSchema, HINT);
  const { $comment, ...recipe } = value;
  return recipe;
}

/** Files whose content goes into the image, as [relative name, content]. */
export interface RecipeInputs {
  recipe: Recipe;
  files: [string, string][];
}

function walk(dir: string, base = dir): string[] {
  return readdirSync(dir)
    .sort()
    .flatMap((n) => {
      const p = path.join(dir, n);
      return lstatSync(p).isDirectory() ? walk(p, base) : [path.relative(base, p)];
    });
}

/** qemu/guest-links.json: the overlay's symlinks, relative path → target in the guest. */
export function guestLinks(qemuDir: string): Record<string, string> {
  const file = path.join(qemuDir, 'guest-links.json');
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(file, 'utf8'));
  } catch (e) {
    throw new KmodvmError('usage', `cannot read ${file}: ${(e as Error).message}`);
  }
  if (
    !raw ||
    typeof raw !== 'object' ||
    Array.isArray(raw) ||
    !Object.entries(raw).every(([k, v]) => typeof v === 'string' && !k.startsWith('/') && !k.split('/').includes('..'))
  ) {
    throw new KmodvmError('usage', `${file} must map relative paths to link targets`);
  }
  return raw as Record<string, string>;
}

/** A file's content, or a symlink's target (the overlay's links point into the guest, not the host). */
const contentOf = (p: string): string => (lstatSync(p).isSymbolicLink() ? `symlink:${readlinkSync(p)}` : readFileSync(p, 'utf8'));

/** Reads everything the image depends on: the recipe, qemu/guest/ and the initrd init. */
export function recipeInputs(qemuDir: string, recipe: Recipe): RecipeInputs {
  const files: [string, string][] = walk(path.join(qemuDir, 'guest')).map((rel) => [`guest/${rel}`, contentOf(path.join(qemuDir, 'guest', rel))]);
  // The overlay's symlinks, as data: npm pack leaves symlinks out, and the key stays what the links gave.
  for (const [rel, target] of Object.entries(guestLinks(qemuDir))) files.push([`guest/${rel}`, `symlink:${target}`]);
  files.push(['initrd-init.sh', readFileSync(path.join(qemuDir, 'initrd-init.sh'), 'utf8')]);
  return { recipe, files };
}

/** The cache key: sha256 over the builder version, the recipe and the input files, in a stable order. */
export function recipeHash(inputs: RecipeInputs): string {
  const h = createHash('sha256');
  h.update(`kmodvm-builder-${BUILDER_VERSION}\n`);
  h.update(JSON.stringify(inputs.recipe, Object.keys(inputs.recipe).sort()));
  for (const [name, content] of [...inputs.files].sort(([a], [b]) => a.localeCompare(b))) {
    h.update(`\0${name}\0${content}`);
  }
  return h.digest('hex').slice(0, 16);
}

export interface MmdebstrapPlan {
  /** Host directory synced into the chroot before the packages are configured. */
  essentialOverlay: string;
  /** Host directory synced into the chroot at the end. */
  customizeOverlay: string;
  /** Output: a directory. */
  target: string;
  /** '' = mmdebstrap's default mirror (with -updates and -security). */
  mirror: string;
}

/** The mmdebstrap argument list. Hooks use mmdebstrap's own sync-in, so no shell snippet is built. */
export function mmdebstrapArgs(r: Recipe, plan: MmdebstrapPlan): string[] {
  return [
    `--variant=${r.variant}`,
    '--mode=root',
    '--format=directory',
    `--include=${r.packages.join(',')}`,
    ...r.dpkgPathExclude.map((p) => `--dpkgopt=path-exclude=${p}`),
    `--essential-hook=sync-in ${plan.essentialOverlay} /`,
    `--customize-hook=sync-in ${plan.customizeOverlay} /`,
    r.suite,
    plan.target,
    ...(plan.mirror ? [plan.mirror] : []),
  ];
}

/**
 * /etc/passwd with user's login shell replaced. The image gives root /bin/sh
 * (dash): sshd starts every command through the login shell, and bash with
 * Debian's .bashrc costs ~70 ms more per command under TCG. vm:ssh still
 * opens bash for people.
 */
export function withLoginShell(passwd: string, user: string, shell: string): string {
  let found = false;
  const out = passwd
    .split('\n')
    .map((line) => {
      const f = line.split(':');
      if (f.length !== 7 || f[0] !== user) return line;
      found = true;
      f[6] = shell;
      return f.join(':');
    })
    .join('\n');
  if (!found) throw new Error(`no user ${user} in /etc/passwd`);
  return out;
}

/** initramfs-tools configuration for the stock initrd, as files of the essential overlay. */
export function initramfsToolsFiles(r: Recipe): [string, string][] {
  return [
    ['etc/initramfs-tools/conf.d/kmodvm.conf', 'MODULES=list\nCOMPRESS=gzip\n'],
    ['etc/initramfs-tools/modules', r.initramfsToolsModules.join('\n') + '\n'],
  ];
}
