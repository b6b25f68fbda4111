// One typed configuration object. Every field's default is documented here and asserted in test/lib/core/config.test.ts.
// Sources, later wins: defaults, environment (KMODVM_*), command-line flags. validateConfig() rejects bad values
// before anything starts, naming the field.
import { existsSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import type { DeviceDecl } from './device-decl.ts';
import { KmodvmError } from './errors.ts';
import { deepFreeze } from './freeze.ts';
import { shippedKernels } from './shipped-kernels.ts';

export type Accel = 'auto' | 'kvm' | 'tcg';
/** Where the modules are built (host-kbuild.ts), and how the guest boots (profile.ts). */ export type BuildMode = 'auto' | 'host' | 'guest';
export type Profile = 'lean' | 'systemd';

export interface Timeouts {
  /** Boot to SSH ready, seconds. Default 180: a TCG boot takes about 8 s; slow laptops and loaded CI runners get headroom. */
  boot: number;
  /** One `make` in the guest, seconds. Default 600 (a TCG kbuild takes about 20 s). */
  build: number;
  /** insmod or rmmod, seconds. Default 60. */
  load: number;
  /** The user app, seconds. Default 60. */ app: number;
  /** Any other guest command (dmesg, upload, power-off), seconds. Default 60. */
  command: number;
}

export interface Config {
  /** Repository root; module, app and transcript paths are relative to it. Default: this checkout. */
  root: string;
  /** `auto` (KVM when usable, else TCG), `kvm` or `tcg`. Default `auto`. Env KMODVM_ACCEL, flag --accel. */
  accel: Accel;
  /** Image cache. Default $KMODVM_CACHE_DIR, else $XDG_CACHE_HOME/kmodvm, else ~/.cache/kmodvm. Flag --cache-dir. */
  cacheDir: string;
  /** Where per-run directories go. Default `<root>/runs`. Env KMODVM_RUNS_DIR, flag --runs-dir. */
  runsDir: string;
  /** Debian mirror for the image build. Default '' = mmdebstrap's own default (which adds -updates and -security). Env KMODVM_MIRROR, flag --mirror. */
  mirror: string;
  /** Guest memory in MiB. Default 1024. Env KMODVM_MEMORY, flag --memory. */
  memoryMiB: number;
  /** Guest CPUs. Default 2 (smp 2 boots faster than 1 under TCG). Env KMODVM_CPUS, flag --cpus. */
  cpus: number;
  /** The suite file (kmodvm.yaml, docs/suite.md). Default '' = ./kmodvm.yaml in the current directory, else this checkout's own (the netlink demo). Flag --suite. */
  suite: string;
  /** Run only the tests with these names or globs. Default all. Flag --only (repeatable). */
  only: string[];
  /** Run shard I of N of the suite's tests ("I/N"). Default '' = all. Env KMODVM_SHARD, flag --shard. */
  shard: string;
  /** Write each test's transcript from the run where it is missing or no longer matches, and print the diff. Default false. Flag --update. */
  update: boolean;
  /** Added to the guest kernel command line (the suite's kernel_args). Default none. */
  kernelArgs: string[];
  /** The suite's devices, its own and its tests' (set by the plan, loop/plan.ts; vm/devices.ts). Default none. */
  devices: readonly DeviceDecl[];
  /** A one-test suite without a suite file: the module directory. Default '' (use the suite). Flag --module-dir. */
  moduleDir: string;
  /** With --module-dir: the user app directory, whose one program the test runs. Default '' (no app). Flag --app-dir. */
  appDir: string;
  /** With --module-dir: the expected transcript. Default '' (none). Flag --transcript. */
  transcript: string;
  /** Guest kernel: the recipe qemu/kernels/<kernel>.json. Default `debian-12` (bookworm, 6.1). Env KMODVM_KERNEL, flag --kernel. */
  kernel: string;
  /** Image recipe. Default '' = qemu/kernels/<kernel>.json. Flag --recipe. */
  recipe: string;
  /** Where the module is built: `auto` (host when the host has the compiler that built the guest kernel, else guest), `host` or `guest`. Default `auto`. Env KMODVM_BUILD, flag --build. */
  build: BuildMode;
  /** Bring your own kernel: a bzImage or vmlinux to boot instead of the image's. Needs kernelBuildDir. Flag --kernel-image. */
  kernelImage: string;
  /** Its kbuild tree (where it was built, or its headers package); the module is built against it on the host. Flag --kernel-build-dir. */
  kernelBuildDir: string;
  /** A debug kernel (qemu/debug-kernels/<kernel>.json), set by validateConfig when --kernel names one: built from Debian's source, booted as --kernel-image with its own tree (scripts/lib/build/debug-kernel.ts). It implies memcheck. */
  debugKernel: string;
  /** An initrd for it that loads virtio and ext4 if they are modules. Default: a busybox initrd without modules (they must be built in). Flag --kernel-initrd. */
  kernelInitrd: string;
  /** Extra splat rules (patterns and allow-list) merged over rules/splat.json. Default none. Flag --splat-rules FILE. */
  splatRules: string;
  /** Replay kbuild's recorded commands when only .c/.h contents changed since a kbuild of the same module shape (host: the last build in the tree; guest: a record kept per image, scripts/lib/build/guest-kbuild.ts). Default true. Env KMODVM_REPLAY=0, flag --no-replay: always run make. */
  replay: boolean;
  /** Resume the lean profile's guest from a snapshot taken right after its first boot of this image and VM configuration, instead of booting it again (scripts/lib/vm/snapshot.ts, docs/performance.md). Default true. Env KMODVM_RESUME=0, flag --no-resume: always boot. */
  resume: boolean;
  /** Boot profile: `lean` (no systemd, about 6 s to SSH under TCG) or `systemd` (the stock initrd and systemd, for drivers that need udev). Default `lean`. Env KMODVM_PROFILE, flag --profile. */
  profile: Profile;
  /** Instance name for vm:up/ssh/logs/status/down/watch. Default `default`. Flag --name. */
  name: string;
  /** vm:test on this running instance instead of a fresh boot. Default '' (hermetic). Flag --reuse NAME. */
  reuse: string;
  /** SLUB's debugging on the stock kernel (suite/checks/slab-check.ts, leak-check.ts) and a check of every slab after each test: a write past an object or after kfree is a splat (issue 17). Default false. Flag --memcheck. */
  memcheck: boolean;
  /** --fail-nth K: instead of the tests, each module's load with its Nth allocation failed, N = 1..K (needs fault injection: a debug kernel). Default 0 (off). */
  failNth: number;
  /** Flake hunting (suite/repeat.ts): runs of each test, default 1 (--repeat N); stop at the first failed run, default false (--until-fail); the order's seed, '' the suite's order, 'random' or digits (--shuffle[=SEED]); every run on one guest, default false: a fresh one each (--same-guest). */
  repeat: number;
  untilFail: boolean;
  shuffle: string;
  sameGuest: boolean;
  /** Rerun what failed in this run directory (its repro.json, loop/repro.ts). Default ''. Flag --repro RUNDIR. */
  repro: string;
  /** gdb on this test after its modules load, or before (gdbBeforeLoad), at the terminal or running the script gdbBatch (suite/gdb-step.ts). Default '', '', false. Flags --gdb TEST, --batch FILE, --gdb-before-load. */
  gdb: string;
  gdbBatch: string;
  gdbBeforeLoad: boolean;
  /** Keep the guest of the first failed test up as this instance (kmodvm ssh/logs/gdb/down --name). Default '' (off). Flag --keep-on-fail[=NAME], NAME default failed. */
  keepOnFail: string;
  /** --dump: a guest's panic or oops makes kmodvm write its memory into the run directory, for kmodvm crash (debug/dump.ts; the suite's dump: true too). --kernel-symbols: Debian's debug vmlinux of the stock kernel, fetched once into the cache (debug/kernel-symbols.ts). --coverage: the modules built with GCOV_PROFILE=y, each test's line and branch coverage read from the guest (suite/checks/coverage.ts; the suite's coverage: true too). All default false. */
  dump: boolean;
  kernelSymbols: boolean;
  coverage: boolean;
  /** Let the guest reach the host's network and services (QEMU's user network without restrict=on). Default false: the guest reaches nothing outside it; only the forwarded SSH port comes in. Flag --guest-net. */
  guestNet: boolean;
  /** Print the plan and the exact QEMU command, run nothing. Default false. Flag --dry-run. */
  dryRun: boolean;
  /** Print the exact QEMU and mmdebstrap commands as they run (always printed with --dry-run). Default false: one line per step. Flag --verbose. */
  verbose: boolean;
  timeouts: Timeouts;
}

/** This checkout (or installed package): the nearest directory up from this file with qemu/ and package.json, so it holds when bundled into dist/ too. */
export function defaultRoot(): string {
  let dir = path.dirname(new URL(import.meta.url).pathname);
  while (!(existsSync(path.join(dir, 'qemu')) && existsSync(path.join(dir, 'package.json')))) {
    const up = path.dirname(dir);
    if (up === dir) return path.resolve(path.dirname(new URL(import.meta.url).pathname), '..', '..', '..');
    dir = up;
  }
  return dir;
}

export function defaultCacheDir(env: NodeJS.ProcessEnv): string {
  if (env.KMODVM_CACHE_DIR) return path.resolve(env.KMODVM_CACHE_DIR);
  const xdg = env.XDG_CACHE_HOME && path.isAbsolute(env.XDG_CACHE_HOME) ? env.XDG_CACHE_HOME : path.join(os.homedir(), '.cache');
  return path.join(xdg, 'kmodvm');
}

export function defaultConfig(env: NodeJS.ProcessEnv = {}, root = defaultRoot(), cwd = root): Config {
  return {
    root,
    accel: 'auto',
    cacheDir: defaultCacheDir(env),
    // The current directory's runs/: a module repository's own, when kmodvm runs from node_modules.
    runsDir: path.join(cwd, 'runs'),
    mirror: '',
    memoryMiB: 1024,
    cpus: 2,
    suite: '',
    only: [],
    shard: '',
    update: false,
    kernelArgs: [],
    devices: [],
    moduleDir: '',
    appDir: '',
    transcript: '',
    kernel: 'debian-12',
    recipe: '',
    build: 'auto',
    replay: true,
    resume: true,
    profile: 'lean',
    kernelImage: '',
    kernelBuildDir: '',
    kernelInitrd: '',
    debugKernel: '',
    splatRules: '',
    name: 'default',
    reuse: '',
    dryRun: false,
    verbose: false,
    guestNet: false,
    memcheck: false,
    failNth: 0,
    repeat: 1,
    untilFail: false,
    shuffle: '',
    sameGuest: false,
    repro: '',
    gdb: '',
    gdbBatch: '',
    gdbBeforeLoad: false,
    keepOnFail: '',
    dump: false,
    coverage: false,
    kernelSymbols: false,
    timeouts: { boot: 180, build: 600, load: 60, app: 60, command: 60 },
  };
}

const bad = (field: string, why: string, got: unknown): KmodvmError =>
  new KmodvmError('usage', `config field \`${field}\` ${why}, got ${JSON.stringify(got)}`, {
    hint: 'fix the flag or KMODVM_* variable named above; see README.md "Configuration"',
  });

const wholeNumber = (lo: number, hi: number) => {
  const msg = `must be a whole number from ${lo} to ${hi}`;
  // Digits only: "1e1" and "0x10" are not whole numbers a user meant.
  return z.preprocess((v) => (typeof v === 'string' && /^\s*\d+\s*$/.test(v) ? Number(v) : v), z.number(msg).int(msg).min(lo, msg).max(hi, msg));
};
const yesNo = z.preprocess(
  (v) =>
    typeof v === 'string' ? (({ 1: true, true: true, yes: true, 0: false, false: false, no: false } as Record<string, boolean>)[v.toLowerCase()] ?? v) : v,
  z.boolean('must be 1 or 0 (true or false)'),
);
const instanceName = /^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/;
const seconds = wholeNumber(1, 86400);

/** The scalar fields' rules; the rules between fields follow in validateConfig. */
const configSchema = z.looseObject({
  accel: z.enum(['auto', 'kvm', 'tcg'], 'must be one of auto, kvm, tcg'),
  profile: z.enum(['lean', 'systemd'], 'must be one of lean, systemd'),
  build: z.enum(['auto', 'host', 'guest'], 'must be one of auto, host, guest'),
  replay: yesNo,
  resume: yesNo,
  memoryMiB: wholeNumber(256, 65536),
  failNth: wholeNumber(0, 100000),
  repeat: wholeNumber(1, 1000),
  shuffle: z.string().refine((v) => v === '' || v === 'random' || /^\d{1,10}$/.test(v), 'must be a seed (digits), or --shuffle alone for a random one'),
  cpus: wholeNumber(1, 64),
  timeouts: z.object({ boot: seconds, build: seconds, load: seconds, app: seconds, command: seconds }),
  name: z.string().regex(instanceName, 'must be 1-32 letters, digits, _ or -'),
  reuse: z.string().refine((v) => v === '' || instanceName.test(v), 'must name an instance (1-32 letters, digits, _ or -)'),
  keepOnFail: z.string().refine((v) => v === '' || instanceName.test(v), 'must name an instance (1-32 letters, digits, _ or -)'),
  mirror: z.string().refine((v) => v === '' || /^(https?|file):\/\/\S+$/.test(v), 'must be an http(s):// or file:// URL'),
  kernel: z.string().regex(/^[a-z0-9][a-z0-9.-]*$/, 'must be a name such as debian-12'),
  shard: z.string().refine((v) => v === '' || /^\d+\/\d+$/.test(v), 'must be I/N, e.g. 2/4'),
});

/** Validates and normalises a partial configuration over the defaults. Throws KmodvmError('usage'). */
export function validateConfig(input: Partial<Omit<Config, 'timeouts'>> & { timeouts?: Partial<Timeouts> }, base: Config): Config {
  const merged = { ...base, ...input, timeouts: { ...base.timeouts, ...(input.timeouts ?? {}) } };
  const r = configSchema.safeParse(merged);
  if (!r.success) {
    const i = r.error.issues[0];
    const got = i.path.reduce<unknown>((o, k) => (o as Record<PropertyKey, unknown>)?.[k], merged);
    throw bad(i.path.join('.'), i.message, got);
  }
  const v = r.data as unknown as Config;
  const debug = debugKernelImage(v.root, v.kernel);
  if (debug && v.kernelImage) throw bad('kernel', `is a debug kernel, which kmodvm builds and boots itself; --kernel-image brings another`, v.kernel);
  for (const k of ['cacheDir', 'runsDir', 'recipe'] as const) {
    if (typeof v[k] !== 'string' || (v[k] === '' && k !== 'recipe')) throw bad(k, 'must be a non-empty path', v[k]);
  }
  const abs = (p: string): string => (p ? path.resolve(v.root, p) : p);
  // What follows from the fields is computed here, into a new object: the input is never written.
  const c: Config = {
    ...v,
    debugKernel: debug ? v.kernel : '',
    memcheck: v.memcheck || Boolean(debug),
    recipe: v.recipe || `qemu/kernels/${debug ?? v.kernel}.json`,
    kernelImage: abs(v.kernelImage),
    kernelBuildDir: abs(v.kernelBuildDir),
    kernelInitrd: abs(v.kernelInitrd),
    cacheDir: path.resolve(v.root, v.cacheDir),
    runsDir: path.resolve(v.root, v.runsDir),
  };
  checkBetweenFields(c);
  return deepFreeze(c);
}

/** The rules between fields, on the computed configuration. Throws KmodvmError('usage'). */
function checkBetweenFields(
  c: Pick<
    Config,
    | 'failNth'
    | 'debugKernel'
    | 'root'
    | 'recipe'
    | 'kernel'
    | 'kernelImage'
    | 'kernelBuildDir'
    | 'kernelInitrd'
    | 'build'
    | 'profile'
    | 'splatRules'
    | 'appDir'
    | 'transcript'
    | 'moduleDir'
    | 'suite'
  >,
): void {
  if (c.failNth && !c.debugKernel)
    throw bad('failNth', "needs fault injection, which Debian's stock kernels do not have: add --kernel debian-12-debug", c.failNth);
  if (!existsSync(path.resolve(c.root, c.recipe))) {
    throw bad(
      c.kernel !== 'debian-12' && c.recipe === `qemu/kernels/${c.kernel}.json` ? 'kernel' : 'recipe',
      `names no recipe file (${c.recipe}); the shipped kernels are ${shippedKernels(c.root, { debug: true }).join(', ')}`,
      c.kernel !== 'debian-12' ? c.kernel : c.recipe,
    );
  }
  for (const k of ['kernelImage', 'kernelBuildDir', 'kernelInitrd'] as const) if (c[k] && !existsSync(c[k])) throw bad(k, 'names no file or directory', c[k]);
  if (Boolean(c.kernelImage) !== Boolean(c.kernelBuildDir))
    throw bad(c.kernelImage ? 'kernelBuildDir' : 'kernelImage', 'is needed too: --kernel-image and --kernel-build-dir go together', '');
  if (c.kernelInitrd && !c.kernelImage) throw bad('kernelInitrd', 'goes with --kernel-image', c.kernelInitrd);
  if (c.kernelImage && c.build === 'guest') throw bad('build', "must be host or auto with --kernel-image: the kernel's build tree is on the host", c.build);
  if (c.kernelImage && c.profile !== 'lean') throw bad('profile', 'must be lean with --kernel-image', c.profile);
  if (c.splatRules && !existsSync(path.resolve(c.root, c.splatRules))) throw bad('splatRules', 'names no file', c.splatRules);
  if ((c.appDir || c.transcript) && !c.moduleDir)
    throw bad(c.appDir ? 'appDir' : 'transcript', 'goes with --module-dir (or write the test in a suite file)', c.appDir || c.transcript);
  if (c.moduleDir && c.suite) throw bad('suite', 'and --module-dir exclude each other: --module-dir makes a one-test suite of its own', c.suite);
}

/** When kernel names a debug kernel (qemu/debug-kernels/<kernel>.json): the image it boots. Its full schema is checked where it is built (build/debug-recipe.ts). */
function debugKernelImage(root: string, kernel: string): string | undefined {
  const file = path.join(root, 'qemu/debug-kernels', `${kernel}.json`);
  if (!existsSync(file)) return undefined;
  let image: unknown;
  try {
    image = (JSON.parse(readFileSync(file, 'utf8')) as { image?: unknown }).image;
  } catch (e) {
    throw bad('kernel', `names a debug-kernel recipe that is not JSON (${file}: ${(e as Error).message})`, kernel);
  }
  if (typeof image !== 'string' || !/^[a-z0-9][a-z0-9.-]*$/.test(image))
    throw bad('kernel', `names a debug-kernel recipe without a valid \`image\` (${file})`, kernel);
  return image;
}

/** The splat rule files for a run: the shipped ones, then the project's own. */
export function splatRuleFiles(c: Pick<Config, 'root' | 'splatRules'>): string[] {
  return [path.join(c.root, 'rules/splat.json'), ...(c.splatRules ? [path.resolve(c.root, c.splatRules)] : [])];
}
