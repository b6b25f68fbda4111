// --kernel-symbols: the stock kernel's symbols, for crash and gdb. Debian
// ships them as linux-image-<release>-dbg (about 0.9 GB); kmodvm fetches the
// exact version of the image's kernel once, with mmdebstrap at its default
// mirror (or --mirror), keeps only its vmlinux (about 0.6 GB; dpkg's
// path-exclude leaves the modules' debug files out) and caches it under
// <cache>/kernel-symbols/<package>_<version>/, written by one rename under
// a lock, as the image is.
import { existsSync } from 'node:fs';
import { readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { mkdirPrivate } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { withLock } from '../core/lock.ts';
import { pidAlive } from '../core/pid.ts';
import { run, shellJoin, tail } from '../core/proc.ts';

export interface KernelPackage {
  suite: string;
  /** linux-image-<release> */
  name: string;
  version: string;
}

/** What the fetch costs, said before it starts (Debian 12's amd64 -dbg package). */
export const SYMBOLS_COST = 'about 0.9 GB to download, 0.6 GB kept';

export const dbgPackageOf = (k: KernelPackage): string => `${k.name}-dbg`;

/** The release is what follows linux-image-. */
export const releaseOf = (k: KernelPackage): string => k.name.replace(/^linux-image-/, '');

/** Where the package's vmlinux is. */
export const dbgVmlinuxPath = (k: KernelPackage): string => `usr/lib/debug/boot/vmlinux-${releaseOf(k)}`;

export const symbolsDir = (cacheDir: string, k: KernelPackage): string => path.join(cacheDir, 'kernel-symbols', `${dbgPackageOf(k)}_${k.version}`);

/** mmdebstrap's arguments: the exact version, extracted, everything but its boot files left out. */
export function fetchArgs(k: KernelPackage, dest: string, mirror = ''): string[] {
  return [
    '--variant=extract',
    '--mode=auto',
    '--dpkgopt=path-exclude=/*',
    '--dpkgopt=path-include=/usr/lib/debug/boot/*',
    `--include=${dbgPackageOf(k)}=${k.version}`,
    k.suite,
    dest,
    ...(mirror ? [mirror] : []),
  ];
}

/** The image's stock kernel as a Debian package (the manifest's exact version), when the manifest has it. */
export function stockPackage(m: { kernelVersion: string; recipe: { suite: string }; packages: Record<string, string> }): KernelPackage | undefined {
  const name = `linux-image-${m.kernelVersion}`;
  return m.packages[name] ? { suite: m.recipe.suite, name, version: m.packages[name] } : undefined;
}

/** The debug kernel keeps its vmlinux beside its kbuild tree (build/debug-kernel.ts). */
export const debugVmlinux = (kernelBuildDir: string): string | undefined => {
  const f = path.join(path.dirname(kernelBuildDir), 'vmlinux');
  return existsSync(f) ? f : undefined;
};

/**
 * The vmlinux with debug info of the kernel a run boots: the debug kernel's,
 * the tree's of a kernel of your own, else, with --kernel-symbols, the
 * stock kernel's from Debian's -dbg package (fetched once, then cached).
 */
export async function runSymbols(
  c: Pick<Config, 'cacheDir' | 'mirror' | 'verbose' | 'kernelSymbols' | 'debugKernel' | 'kernelImage' | 'kernelBuildDir'>,
  img: { manifest: Parameters<typeof stockPackage>[0] },
  log: (l: string) => void,
): Promise<string | undefined> {
  const own = c.debugKernel ? debugVmlinux(c.kernelBuildDir) : c.kernelImage ? path.join(c.kernelBuildDir, 'vmlinux') : undefined;
  if (c.debugKernel || c.kernelImage) {
    if (c.kernelSymbols)
      log(`kernel symbols: --kernel-symbols is for Debian's stock kernel; this run's kernel has ${own && existsSync(own) ? `its own, ${own}` : 'none kept'}`);
    return own && existsSync(own) ? own : undefined;
  }
  // Only when asked: gdb takes about 3 s to read Debian's 0.6 GB vmlinux (crash finds the cached one itself, debug/crash.ts).
  const k = c.kernelSymbols ? stockPackage(img.manifest) : undefined;
  return k && (cachedSymbols(c.cacheDir, k) ?? ensureSymbols(c, k, log));
}

/** The cached vmlinux of this kernel, or undefined. */
export function cachedSymbols(cacheDir: string, k: KernelPackage): string | undefined {
  const f = path.join(symbolsDir(cacheDir, k), 'vmlinux');
  return existsSync(f) ? f : undefined;
}

/** The vmlinux with the kernel's debug info: cached, else fetched now. */
export async function ensureSymbols(c: Pick<Config, 'cacheDir' | 'mirror' | 'verbose'>, k: KernelPackage, log: (l: string) => void): Promise<string> {
  const have = cachedSymbols(c.cacheDir, k);
  if (have) return have;
  const dir = symbolsDir(c.cacheDir, k);
  await mkdirPrivate(path.dirname(dir));
  const onWait = (): void => log(`kernel symbols: another kmodvm is fetching ${dbgPackageOf(k)}; waiting for it`);
  return withLock(dir, { waitS: 1800, failure: 'setup', what: `the kernel symbols ${dbgPackageOf(k)}`, onWait }, async () => {
    const again = cachedSymbols(c.cacheDir, k);
    if (again) return again;
    for (const n of await readdir(path.dirname(dir))) {
      const m = /^\.tmp-.*-(\d+)$/.exec(n);
      if (m && !pidAlive(Number(m[1]))) await rm(path.join(path.dirname(dir), n), { recursive: true, force: true });
    }
    const tmp = path.join(path.dirname(dir), `.tmp-${path.basename(dir)}-${process.pid}`);
    try {
      await fetchInto(c, k, tmp, log);
      await rename(tmp, dir);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return path.join(dir, 'vmlinux');
  });
}

async function fetchInto(c: Pick<Config, 'mirror' | 'verbose'>, k: KernelPackage, tmp: string, log: (l: string) => void): Promise<void> {
  const root = path.join(tmp, 'pkg');
  await mkdirPrivate(tmp);
  const args = fetchArgs(k, root, c.mirror);
  log(`kernel symbols: fetching ${dbgPackageOf(k)} ${k.version} from Debian ${k.suite} (${SYMBOLS_COST}), once; it is cached for the next runs`);
  if (c.verbose) log(`$ ${shellJoin(['mmdebstrap', ...args])}`);
  const t0 = Date.now();
  const r = await run('mmdebstrap', args, { timeoutMs: 30 * 60_000, echo: c.verbose });
  if (r.exitCode !== 0)
    throw new KmodvmError('setup', `kernel symbols: mmdebstrap could not fetch ${dbgPackageOf(k)}=${k.version} (${r.reason})`, {
      evidence: tail(`${r.stdout}\n${r.stderr}`, 15),
      hint: `Debian's mirror may have moved on from this kernel: build the image again (${kmodvmCommand('image', 'build --force')}) for the current one, or give --mirror a snapshot mirror that has ${k.version}`,
    });
  const vmlinux = path.join(root, dbgVmlinuxPath(k));
  if (!existsSync(vmlinux)) throw new KmodvmError('setup', `kernel symbols: ${dbgPackageOf(k)} has no ${dbgVmlinuxPath(k)}`);
  await rename(vmlinux, path.join(tmp, 'vmlinux'));
  await rm(root, { recursive: true, force: true });
  const mb = (await stat(path.join(tmp, 'vmlinux'))).size / 1e6;
  log(`kernel symbols: ${dbgPackageOf(k)}'s vmlinux (${mb.toFixed(0)} MB) in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
}
