// vm:image prune: images no recipe of this checkout builds any more. Every
// change to a recipe, or to how images are built (BUILDER_VERSION), makes a
// new image key; the old image (~350 MiB), its guest kbuild records and its
// saved guest (~120 MiB, snapshot.ts) stay in the cache until pruned. Kept: the image of every shipped recipe
// (qemu/kernels/*.json), of the configured recipe (--recipe, which may be a
// file of your own), and of every running instance.

import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, rename, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { compilerVersion, kernelsDir } from '../build/debug-kernel.ts';
import { debugKernelKey, debugRecipeFile, loadDebugRecipe } from '../build/debug-recipe.ts';
import { guestRecordsRoot } from '../build/guest-kbuild.ts';
import type { Config } from '../core/config.ts';
import { diskBytes, mib } from '../core/disk.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { pidAlive } from '../core/pid.ts';
import { shippedKernels } from '../core/shipped-kernels.ts';
import { imageKey, imagesDir } from '../image/image.ts';
import { hostBuildsDir } from '../suite/build-tree.ts';
import { listNames, lookup } from '../vm/instance.ts';
import { snapshotsDir, UNUSABLE } from '../vm/snapshot.ts';

export interface PruneItem {
  path: string;
  why: string;
}
export interface PrunePlan {
  remove: PruneItem[];
  keep: PruneItem[];
}

/**
 * Which cache entries go. images and records are directory names under
 * images/ and kbuild-records/; keep maps an image key to why it stays.
 * Pure: the caller lists the directories and removes.
 */
export function planPrune(o: {
  imagesDir: string;
  images: readonly string[];
  recordsDir: string;
  records: readonly string[];
  keep: ReadonlyMap<string, string>;
  snapshotsDir?: string;
  snapshots?: readonly { name: string; imageKey?: string }[];
  /** Debug kernels (kernels/<recipe>-<key>), and the names to keep with why (#27.4). */
  kernelsDir?: string;
  kernels?: readonly string[];
  keepKernels?: ReadonlyMap<string, string>;
  /** Whether a pid still runs: a temporary directory of a live process is its build or save in progress. */
  alive?: (pid: number) => boolean;
}): PrunePlan {
  const plan: PrunePlan = { remove: [], keep: [] };
  const alive = o.alive ?? pidAlive;
  // Locks are another run's, and so is a temporary directory whose process still runs.
  const busy = (n: string): boolean => n.endsWith('.lock') || (n.includes('.tmp-') && alive(Number(/-(\d+)$/.exec(n)?.[1] ?? 0)));
  for (const n of [...o.images].sort()) {
    const p = path.join(o.imagesDir, n);
    if (busy(n)) continue;
    if (n.startsWith('.tmp-')) plan.remove.push({ path: p, why: 'the leftover of an interrupted image build' });
    else if (o.keep.has(n)) plan.keep.push({ path: p, why: o.keep.get(n)! });
    else plan.remove.push({ path: p, why: 'built from a recipe this checkout no longer has' });
  }
  for (const n of [...o.records].sort()) {
    if (!o.keep.has(n)) plan.remove.push({ path: path.join(o.recordsDir, n), why: 'guest kbuild records of an image that is gone or pruned' });
  }
  for (const s of [...(o.snapshots ?? [])].sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(o.snapshotsDir ?? '', s.name);
    if (busy(s.name)) continue;
    if (s.name.includes('.tmp-')) plan.remove.push({ path: p, why: 'the leftover of an interrupted snapshot save' });
    else if (!s.imageKey || !o.keep.has(s.imageKey)) plan.remove.push({ path: p, why: 'a saved guest of an image that is gone or pruned' });
  }
  for (const n of [...(o.kernels ?? [])].sort()) {
    const p = path.join(o.kernelsDir ?? '', n);
    if (busy(n)) continue;
    if (n.startsWith('.tmp-')) plan.remove.push({ path: p, why: 'the leftover of an interrupted debug kernel build' });
    else if (o.keepKernels?.has(n)) plan.keep.push({ path: p, why: o.keepKernels.get(n)! });
    else plan.remove.push({ path: p, why: 'a debug kernel no recipe of this checkout builds (another recipe, fragment, builder or compiler)' });
  }
  return plan;
}

/** The image keys to keep, and why: the shipped recipes, the configured one, the running instances. */
export async function keptKeys(c: Pick<Config, 'cacheDir' | 'recipe' | 'root'>): Promise<Map<string, string>> {
  const keep = new Map<string, string>();
  for (const k of shippedKernels(c.root)) {
    const recipe = `qemu/kernels/${k}.json`;
    keep.set(imageKey({ root: c.root, recipe }).key, `the image of ${recipe}`);
  }
  const own = imageKey(c).key;
  if (!keep.has(own)) keep.set(own, `the image of ${c.recipe}`);
  for (const name of await listNames(c)) {
    const l = await lookup(c, name);
    if (l.alive) keep.set(l.state.imageKey, `instance ${name} runs it`);
  }
  return keep;
}

const list = async (dir: string): Promise<string[]> => (existsSync(dir) ? readdir(dir) : []);

/** The debug kernels to keep, and why: the current build of each shipped debug recipe (qemu/debug-kernels/), and of the configured one. */
export async function keptKernels(c: Pick<Config, 'root'> & Partial<Pick<Config, 'debugKernel'>>): Promise<Map<string, string>> {
  const keep = new Map<string, string>();
  const compiler = await compilerVersion();
  const names = (await list(path.join(c.root, 'qemu/debug-kernels'))).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
  for (const name of new Set([...names, ...(c.debugKernel ? [c.debugKernel] : [])])) {
    const r = loadDebugRecipe(c.root, name);
    keep.set(`${r.name}-${debugKernelKey(r, compiler)}`, `the debug kernel of ${path.relative(c.root, debugRecipeFile(c.root, name))}`);
  }
  return keep;
}

export async function prunePlan(c: Pick<Config, 'cacheDir' | 'recipe' | 'root'>, o: { tmpDir?: string } = {}): Promise<PrunePlan> {
  const recordsDir = guestRecordsRoot(c.cacheDir);
  const snapDir = snapshotsDir(c.cacheDir);
  // A saved guest names its image in meta.json; a guest that cannot be saved here, in unusable.json.
  const imageOf = async (name: string): Promise<string | undefined> => {
    for (const f of ['meta.json', UNUSABLE]) {
      const k = (JSON.parse(await readFile(path.join(snapDir, name, f), 'utf8').catch(() => '{}')) as { imageKey?: string }).imageKey;
      if (k) return k;
    }
    return undefined;
  };
  const foreign: PruneItem[] = [];
  const ours = async (dir: string, kind: keyof typeof MADE): Promise<string[]> => {
    const out: string[] = [];
    for (const n of await list(dir)) {
      if (await madeByKmodvm(path.join(dir, n), n, kind)) out.push(n);
      else foreign.push({ path: path.join(dir, n), why: `not made by kmodvm (${MADE[kind].what}): left alone` });
    }
    return out;
  };
  const images = await ours(imagesDir(c), 'image');
  const records = await ours(recordsDir, 'record');
  const snapshots = await Promise.all((await ours(snapDir, 'snapshot')).map(async (name) => ({ name, imageKey: await imageOf(name) })));
  const kernels = await ours(kernelsDir(c), 'kernel');
  const plan = planPrune({
    imagesDir: imagesDir(c),
    images,
    recordsDir,
    records,
    keep: await keptKeys(c),
    snapshotsDir: snapDir,
    snapshots,
    kernelsDir: kernelsDir(c),
    kernels,
    keepKernels: kernels.length ? await keptKernels(c) : new Map(),
  });
  return { ...plan, remove: [...plan.remove, ...(await leftovers(c, o.tmpDir ?? os.tmpdir()))], keep: [...plan.keep, ...foreign] };
}

const DAY_MS = 86_400_000;
/** kmodvm's own temporary directories (an upload's stage, a saving guest's sockets, a fetched kbuild record, a static check's tree, the bench's). */
const TMP_NAMES = /^kmodvm-(upload|snap|record|static|bench-[a-z]+|floor)-[A-Za-z0-9]{6}$/;

/**
 * What runs leave behind that nothing else removes: build trees unused for
 * 14 days (lockTree marks each use; the next run builds again), and kmodvm's
 * temporary directories a killed run left in the temporary directory, a day
 * old. A tree whose lock is held is another run's.
 */
async function leftovers(c: Pick<Config, 'cacheDir'>, tmpDir: string, now = Date.now()): Promise<PruneItem[]> {
  const out: PruneItem[] = [];
  const builds = hostBuildsDir(c.cacheDir);
  for (const n of await list(builds)) {
    const p = path.join(builds, n);
    const st = await lstat(p).catch(() => undefined);
    if (!st?.isDirectory() || !/^[0-9a-f]{16}$/.test(n) || existsSync(`${p}.lock`)) continue;
    if (now - st.mtimeMs > 14 * DAY_MS) out.push({ path: p, why: `a suite's build tree unused for ${Math.floor((now - st.mtimeMs) / DAY_MS)} days` });
  }
  for (const n of await list(tmpDir)) {
    const p = path.join(tmpDir, n);
    const st = TMP_NAMES.test(n) ? await lstat(p).catch(() => undefined) : undefined;
    if (st?.isDirectory() && st.uid === process.getuid?.() && now - st.mtimeMs > DAY_MS) out.push({ path: p, why: 'a temporary directory a killed run left' });
  }
  return out;
}

const KEY = /^[0-9a-f]{16}$/;
/**
 * What kmodvm makes under each cache directory: its names (a key, a lock, a
 * temporary directory of a build, a save or a prune) and the file each
 * finished entry holds. Anything else (a wrong --cache-dir, a directory of
 * your own) is never removed.
 */
const MADE = {
  image: {
    name: /^(?:[0-9a-f]{16}|\.[0-9a-f]{16}\.lock|\.tmp-(?:[0-9a-f]+|import|prune-.+)-\d+)$/,
    marker: ['manifest.json'],
    what: 'an image key with its manifest.json',
  },
  record: { name: /^(?:[0-9a-f]{16}|\.tmp-prune-.+-\d+)$/, marker: [], what: 'an image key' },
  snapshot: {
    name: /^(?:[0-9a-f]{16}(?:\.tmp-\d+)?|\.[0-9a-f]{16}\.lock|\.tmp-prune-.+-\d+)$/,
    marker: ['meta.json', 'unusable.json'],
    what: 'a guest key with its meta.json or unusable.json',
  },
  kernel: {
    name: /^(?:[a-z0-9][\w.-]*-[0-9a-f]{16}(?:\.lock)?|\.tmp-(?:[0-9a-f]{16}|prune-.+)-\d+)$/,
    marker: ['kernel.json'],
    what: 'a debug kernel, recipe-key, with its kernel.json',
  },
} as const;

async function madeByKmodvm(p: string, name: string, kind: keyof typeof MADE): Promise<boolean> {
  const m = MADE[kind];
  if (!m.name.test(name)) return false;
  // A finished entry holds its marker; a lock, or a temporary directory, is known by its name alone.
  const finished = kind === 'kernel' ? /-[0-9a-f]{16}$/.test(name) : KEY.test(name);
  if (!finished || !m.marker.length) return true;
  return m.marker.some((f) => existsSync(path.join(p, f)));
}

/**
 * Removes the plan's entries. Each is first renamed to a .tmp- name beside
 * it, so an interrupted prune never leaves a half-deleted image that looks
 * valid (a later prune removes the .tmp- leftover). Returns bytes freed.
 */
export async function applyPrune(plan: PrunePlan, log: (l: string) => void): Promise<number> {
  let freed = 0;
  for (const item of plan.remove) {
    const bytes = await diskBytes(item.path);
    const doomed = path.join(path.dirname(item.path), `.tmp-prune-${path.basename(item.path)}-${process.pid}`);
    await rename(item.path, doomed);
    await rm(doomed, { recursive: true, force: true });
    freed += bytes;
    log(`removed ${item.path} (${mib(bytes)}): ${item.why}`);
  }
  return freed;
}

/** After an image build: how many older images no recipe of this checkout builds (npm run vm:image -- prune removes them). */
export async function pruneHint(c: Pick<Config, 'cacheDir' | 'recipe' | 'root'>, log: (l: string) => void): Promise<void> {
  const stale = (await prunePlan(c)).remove.filter((r) => path.dirname(r.path) === imagesDir(c));
  if (stale.length)
    log(
      `image: ${stale.length} older image${stale.length > 1 ? 's' : ''} in the cache that no recipe of this checkout builds: ${kmodvmCommand('image', 'prune')} removes ${stale.length > 1 ? 'them' : 'it'}`,
    );
}
