// The debug kernel (--kernel debian-12-debug): Debian's own kernel source,
// fetched with mmdebstrap (--variant=extract), configured and built on the
// host in the build sandbox, cached under <cache>/kernels/<name>-<key>/ like
// an image: built once, under the key's lock, in a temporary directory that
// becomes the cache entry with one rename. What stays is the bzImage, the
// kbuild tree after `make clean` (what external modules need: the config,
// Module.symvers, headers, scripts) and kernel.json.
import { cp, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeAtomic as atomicWrite } from '../core/atomic.ts';
import type { Config } from '../core/config.ts';
import { diskBytes, mkdirPrivate } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import { withLock } from '../core/lock.ts';
import { run, shellJoin, tail } from '../core/proc.ts';
import { withProgress } from '../core/progress.ts';
import { preflight } from '../host/preflight.ts';
import { staleTemp } from '../image/build.ts';
import { listTree } from '../image/initrd.ts';
import {
  buildCommands,
  type DebugRecipe,
  debugKernelKey,
  fragmentsOf,
  installCommand,
  loadDebugRecipe,
  MODULES_ROOT,
  parseKconfig,
  unmetOptions,
} from './debug-recipe.ts';
import { EXPORTS_MAP, exportMap } from './kernel-exports.ts';
import { runSandboxed } from './sandbox.ts';

type Log = (l: string) => void;

export interface DebugKernel {
  name: string;
  dir: string;
  bzImage: string;
  /** The kbuild tree modules are built against. */
  buildDir: string;
  version: string;
  buildSeconds: number;
  /** The recipe's boot parameters. */
  kernelArgs: string[];
  /** The kernel's own modules as a newc cpio of lib/modules/<version>/, appended to the guest's initrd. */
  modulesCpio: string;
}

interface Manifest {
  name: string;
  key: string;
  version: string;
  sourcePackage: string;
  builtAt: string;
  buildSeconds: number;
  bzImageBytes: number;
  treeBytes: number;
}

export const kernelsDir = (c: Pick<Config, 'cacheDir'>): string => path.join(c.cacheDir, 'kernels');
const TREE = 'build';
const MODULES_CPIO = 'modules.cpio';

/** The debug kernel's modules cpio, beside its kbuild tree (what --kernel NAME-debug sets as kernelBuildDir). */
export const modulesCpioOf = (buildDir: string): string => path.join(path.dirname(buildDir), MODULES_CPIO);

export async function compilerVersion(): Promise<string> {
  const r = await run('gcc', ['-dumpfullversion'], { timeoutMs: 10_000 });
  return r.stdout.trim() || 'unknown';
}

async function found(dir: string, r: DebugRecipe): Promise<DebugKernel | undefined> {
  const m = (await readFile(path.join(dir, 'kernel.json'), 'utf8').then(JSON.parse, () => undefined)) as Manifest | undefined;
  if (!m || m.name !== r.name) return undefined;
  const { name, version, buildSeconds } = m;
  const modulesCpio = modulesCpioOf(path.join(dir, TREE));
  return { name, dir, bzImage: path.join(dir, 'bzImage'), buildDir: path.join(dir, TREE), version, buildSeconds, kernelArgs: r.kernelArgs, modulesCpio };
}

/** The recipe, its key and its cache dir; the preflight for its build tools first. */
export async function debugKernelPlan(c: Pick<Config, 'cacheDir' | 'debugKernel' | 'root'>, log: Log): Promise<{ r: DebugRecipe; key: string; dir: string }> {
  const r = loadDebugRecipe(c.root, c.debugKernel);
  await preflight(log, r.hostPackages);
  const key = debugKernelKey(r, await compilerVersion());
  return { r, key, dir: path.join(kernelsDir(c), `${r.name}-${key}`) };
}

/** What --dry-run says about the debug kernel: cached, or the commands and configuration it will build. */
export async function describeDebugKernel(c: Pick<Config, 'cacheDir' | 'debugKernel' | 'root'>): Promise<string[]> {
  const r = loadDebugRecipe(c.root, c.debugKernel);
  const key = debugKernelKey(r, await compilerVersion());
  const dir = path.join(kernelsDir(c), `${r.name}-${key}`);
  const have = await found(dir, r);
  if (have) return [`plan: debug kernel ${r.name}: ${have.version}, cached in ${dir}`];
  const tree = `${dir}/${TREE}`;
  const cmds = buildCommands(r, { tree, fragmentFile: `${tree}/.kmodvm-fragment.config`, jobs: os.availableParallelism() });
  const options = [...parseKconfig(r.fragmentText)].map(([k, v]) => `${k}=${v}`);
  return [
    `plan: debug kernel ${r.name}: build it first (not cached), into ${dir}`,
    `plan:   mmdebstrap --variant=extract --include=${r.sourcePackage} ${r.suite}, then unpack /usr/src/${r.sourcePackage}.tar.xz`,
    ...cmds.map(([cmd, args]) => `plan:   ${shellJoin([path.basename(cmd), ...args])}`),
    `plan:   the configuration: ${r.configBase.join(' ')}, then ${fragmentsOf(r.fragment).join(' + ')}: ${options.join(' ')}`,
    `plan:   boot parameters: ${r.kernelArgs.join(' ')}`,
  ];
}

/** The cached debug kernel, built first when there is none (about 9 minutes on 2 cores). */
export async function ensureDebugKernel(c: Pick<Config, 'cacheDir' | 'debugKernel' | 'mirror' | 'root' | 'verbose'>, log: Log): Promise<DebugKernel> {
  const { r, key, dir } = await debugKernelPlan(c, log);
  const have = await found(dir, r);
  if (have) return have;
  await mkdirPrivate(kernelsDir(c));
  const onWait = (): void => log(`debug kernel: another kmodvm is building ${r.name}; waiting for it`);
  return withLock(dir, { waitS: 3600, failure: 'image', what: `the debug kernel ${r.name}`, onWait }, async () => {
    const again = await found(dir, r);
    if (again) return again;
    for (const n of await readdir(kernelsDir(c))) if (staleTemp(n)) await rm(path.join(kernelsDir(c), n), { recursive: true, force: true });
    const tmp = path.join(kernelsDir(c), `.tmp-${key}-${process.pid}`);
    try {
      await mkdirPrivate(tmp);
      await buildInto(c, r, key, tmp, log);
      await rename(tmp, dir);
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
    return (await found(dir, r))!;
  });
}

async function step(
  c: Pick<Config, 'verbose'>,
  what: string,
  cmd: string,
  args: string[],
  o: { timeoutMs: number; writable: string; jail?: boolean },
): Promise<string> {
  if (c.verbose) process.stderr.write(`$ ${shellJoin([cmd, ...args])}\n`);
  const ro = { timeoutMs: o.timeoutMs, echo: c.verbose };
  const r = o.jail === false ? await run(cmd, args, ro) : await runSandboxed(cmd, args, { writable: [o.writable], cwd: o.writable }, ro);
  if (r.exitCode !== 0)
    throw new KmodvmError('image', `debug kernel: ${what} failed (${r.reason})`, {
      evidence: tail(`${r.stdout}\n${r.stderr}`, 25),
      hint: 'run again with --verbose to see every command; the recipe is in qemu/debug-kernels/',
    });
  return r.stdout;
}

/** Debian's source package, extracted (not installed) by mmdebstrap: the tarball in it, unpacked. Returns the kernel tree. */
async function fetchSource(c: Pick<Config, 'mirror' | 'verbose'>, r: DebugRecipe, tmp: string, log: Log): Promise<string> {
  const pkg = path.join(tmp, 'pkg');
  const args = ['--variant=extract', '--mode=auto', `--include=${r.sourcePackage}`, r.suite, pkg, ...(c.mirror ? [c.mirror] : [])];
  log(`debug kernel: fetching ${r.sourcePackage} from Debian ${r.suite} (mmdebstrap --variant=extract)`);
  await step(c, `mmdebstrap ${shellJoin(args)}`, 'mmdebstrap', args, { timeoutMs: 20 * 60_000, writable: tmp, jail: false });
  const tarball = path.join(pkg, 'usr/src', `${r.sourcePackage}.tar.xz`);
  await step(c, `unpacking ${tarball}`, 'tar', ['-xf', tarball, '-C', tmp], { timeoutMs: 10 * 60_000, writable: tmp });
  await rm(pkg, { recursive: true, force: true });
  return path.join(tmp, r.sourcePackage);
}

async function buildInto(c: Pick<Config, 'mirror' | 'verbose'>, r: DebugRecipe, key: string, tmp: string, log: Log): Promise<void> {
  const t0 = Date.now();
  const src = await fetchSource(c, r, tmp, log);
  const tree = path.join(tmp, TREE);
  await rename(src, tree);
  const fragmentFile = path.join(tree, '.kmodvm-fragment.config');
  await atomicWrite(fragmentFile, r.fragmentText);
  const jobs = Math.max(1, os.availableParallelism());
  const cmds = buildCommands(r, { tree, fragmentFile, jobs });
  for (const [cmd, args] of cmds.slice(0, -1))
    await step(c, shellJoin([path.basename(cmd), ...args.slice(-1)]), cmd, args, { timeoutMs: 5 * 60_000, writable: tree });
  const unmet = unmetOptions(r.fragmentText, await readFile(path.join(tree, '.config'), 'utf8'));
  if (unmet.length)
    throw new KmodvmError('image', `debug kernel: kconfig left out ${unmet.length} option(s) of ${fragmentsOf(r.fragment).join(' + ')}`, {
      evidence: unmet.join('\n'),
      hint: `give ${fragmentsOf(r.fragment).join(' + ')} what those options depend on (make menuconfig in a copy of the tree shows it)`,
    });
  const [make, args] = cmds[cmds.length - 1];
  log(`debug kernel: building ${r.name} with ${jobs} jobs (a cold build is about 9 minutes on 2 cores)`);
  await withProgress(`building the debug kernel ${r.name}`, c.verbose, () =>
    step(c, 'make bzImage modules', make, args, { timeoutMs: 90 * 60_000, writable: tree }),
  );
  await cp(path.join(tree, 'arch/x86/boot/bzImage'), path.join(tmp, 'bzImage'));
  // Its symbols, with their debug info, for kmodvm crash and gdb: make clean removes the tree's.
  await cp(path.join(tree, 'vmlinux'), path.join(tmp, 'vmlinux'));
  const version = (await readFile(path.join(tree, 'include/config/kernel.release'), 'utf8')).trim();
  await packModules(c, tree, path.join(tmp, MODULES_CPIO));
  // While the sources are here: what a module may need that this kernel does not build, by symbol (kernel-exports.ts).
  const map = await exportMap(tree).catch((e: Error) => {
    log(`debug kernel: no map of the symbols it leaves out (${e.message}); a module's undefined symbols will not name their options`);
    return undefined;
  });
  if (map) await atomicWrite(path.join(tree, EXPORTS_MAP), `${JSON.stringify(map)}\n`);
  await slim(c, tree);
  const manifest: Manifest = {
    name: r.name,
    key,
    version,
    sourcePackage: r.sourcePackage,
    builtAt: new Date().toISOString(),
    buildSeconds: Math.round((Date.now() - t0) / 1000),
    bzImageBytes: (await stat(path.join(tmp, 'bzImage'))).size,
    treeBytes: await diskBytes(tree),
  };
  await atomicWrite(path.join(tmp, 'kernel.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  log(`debug kernel: ${version} built in ${manifest.buildSeconds} s`);
}

/** The kernel's own modules (the fixtures' test doubles, the subsystem cores), installed with depmod, then one cpio for the initrd. */
async function packModules(c: Pick<Config, 'verbose'>, tree: string, out: string): Promise<void> {
  const [make, args] = installCommand(tree);
  await step(c, 'make modules_install', make, args, { timeoutMs: 10 * 60_000, writable: tree });
  const root = path.join(tree, MODULES_ROOT);
  // modules_install's build and source links name this host's tree: nothing the guest may follow.
  for (const d of await readdir(path.join(root, 'lib/modules')))
    for (const l of ['build', 'source']) await rm(path.join(root, 'lib/modules', d, l), { force: true });
  const files = await listTree(root);
  const r = await run('cpio', ['--create', '--format=newc', '--quiet', '--owner=0:0', '-O', out], {
    cwd: root,
    input: `${files.join('\n')}\n`,
    timeoutMs: 120_000,
  });
  if (r.exitCode !== 0) throw new KmodvmError('image', `debug kernel: packing its modules failed (${r.reason})`, { evidence: r.stderr });
  await rm(root, { recursive: true, force: true });
}

/** `make clean` keeps what external modules need; the kernel's own C sources and its documentation are not among it. */
async function slim(c: Pick<Config, 'verbose'>, tree: string): Promise<void> {
  await step(c, 'make clean', 'make', ['-C', tree, 'ARCH=x86_64', 'clean'], { timeoutMs: 10 * 60_000, writable: tree });
  await rm(path.join(tree, 'Documentation'), { recursive: true, force: true });
  await step(
    c,
    'removing the C sources',
    'find',
    [tree, '-type', 'f', '-name', '*.c', '-not', '-path', `${tree}/scripts/*`, '-not', '-path', `${tree}/tools/*`, '-delete'],
    { timeoutMs: 10 * 60_000, writable: tree },
  );
}
