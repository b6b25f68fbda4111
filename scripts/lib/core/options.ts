// Every command-line option, once: its type, its argument, its help line, the
// Config field it sets and its KMODVM_* variable. Each command picks its own
// from this table (cli/commands.ts); the help and the parser come from it.
import type { Config, Timeouts } from './config.ts';

export type Group = 'suite' | 'guest' | 'build' | 'run' | 'instance' | 'command';

export interface OptionSpec {
  type: 'string' | 'boolean';
  /** The argument's name in the help, e.g. FILE. */
  arg?: string;
  help: string;
  group: Group;
  short?: string;
  multiple?: boolean;
  /** The Config field it sets; `timeouts.x` for a timeout; absent for a command's own option. */
  field?: keyof Config | `timeouts.${keyof Timeouts}`;
  /** A boolean flag that sets field to false (--no-replay). */
  negates?: boolean;
  env?: string;
  /** Paths the user typed are relative to the current directory. */
  path?: boolean;
  /** The value of a string option given bare (--shuffle alone means --shuffle=random). */
  optional?: string;
}

export const OPTIONS = {
  suite: { type: 'string', arg: 'FILE', group: 'suite', field: 'suite', path: true, help: "the suite file (default ./kmodvm.yaml, else this checkout's own)" },
  only: { type: 'string', arg: 'NAME|GLOB', group: 'suite', field: 'only', multiple: true, help: 'run only these tests (repeatable)' },
  shard: { type: 'string', arg: 'I/N', group: 'suite', field: 'shard', env: 'KMODVM_SHARD', help: 'run the I-th of N shares of the tests (round-robin)' },
  update: { type: 'boolean', group: 'suite', field: 'update', help: 'write each transcript that is missing or no longer matches, from the run' },
  'module-dir': { type: 'string', arg: 'DIR', group: 'suite', field: 'moduleDir', path: true, help: 'a one-test suite without a suite file: the module' },
  'app-dir': { type: 'string', arg: 'DIR', group: 'suite', field: 'appDir', path: true, help: 'with --module-dir: the app the test runs' },
  transcript: { type: 'string', arg: 'FILE', group: 'suite', field: 'transcript', path: true, help: 'with --module-dir: the expected transcript' },
  kernel: {
    type: 'string',
    arg: 'NAME',
    group: 'guest',
    field: 'kernel',
    env: 'KMODVM_KERNEL',
    help: "a recipe in qemu/kernels/ (default debian-12, or the suite's kernels:)",
  },
  accel: { type: 'string', arg: 'auto|kvm|tcg', group: 'guest', field: 'accel', env: 'KMODVM_ACCEL', help: 'the accelerator (default auto: KVM when usable)' },
  profile: { type: 'string', arg: 'lean|systemd', group: 'guest', field: 'profile', env: 'KMODVM_PROFILE', help: 'how the guest boots (default lean)' },
  memory: { type: 'string', arg: 'MIB', group: 'guest', field: 'memoryMiB', env: 'KMODVM_MEMORY', help: 'guest memory (default 1024)' },
  cpus: { type: 'string', arg: 'N', group: 'guest', field: 'cpus', env: 'KMODVM_CPUS', help: 'guest CPUs (default 2)' },
  recipe: { type: 'string', arg: 'FILE', group: 'guest', field: 'recipe', help: 'an image recipe instead of qemu/kernels/<kernel>.json' },
  mirror: {
    type: 'string',
    arg: 'URL',
    group: 'guest',
    field: 'mirror',
    env: 'KMODVM_MIRROR',
    help: "a Debian mirror for the image build (default mmdebstrap's own)",
  },
  'no-resume': { type: 'boolean', group: 'guest', field: 'resume', negates: true, env: 'KMODVM_RESUME', help: 'always boot; never resume the saved guest' },
  'kernel-image': {
    type: 'string',
    arg: 'FILE',
    group: 'guest',
    field: 'kernelImage',
    path: true,
    help: 'bring your own kernel: a bzImage or vmlinux (with --kernel-build-dir)',
  },
  'kernel-build-dir': {
    type: 'string',
    arg: 'DIR',
    group: 'guest',
    field: 'kernelBuildDir',
    path: true,
    help: 'its kbuild tree; the modules are built against it',
  },
  'kernel-initrd': { type: 'string', arg: 'FILE', group: 'guest', field: 'kernelInitrd', path: true, help: 'an initrd for it (default: busybox, no modules)' },
  'guest-net': {
    type: 'boolean',
    group: 'guest',
    field: 'guestNet',
    help: "let the guest reach the host's network (default: it reaches nothing; only SSH comes in)",
  },
  reuse: { type: 'string', arg: 'NAME', group: 'guest', field: 'reuse', help: 'run on this running instance (kmodvm up) instead of a fresh guest' },
  build: {
    type: 'string',
    arg: 'auto|host|guest',
    group: 'build',
    field: 'build',
    env: 'KMODVM_BUILD',
    help: "where the modules are built (default auto: host when it has the kernel's gcc)",
  },
  'no-replay': {
    type: 'boolean',
    group: 'build',
    field: 'replay',
    negates: true,
    env: 'KMODVM_REPLAY',
    help: "always run make (default: replay kbuild's commands when only .c/.h changed)",
  },
  'splat-rules': {
    type: 'string',
    arg: 'FILE',
    group: 'run',
    field: 'splatRules',
    path: true,
    help: 'extra splat patterns and allow-list over rules/splat.json',
  },
  'cache-dir': { type: 'string', arg: 'DIR', group: 'run', field: 'cacheDir', path: true, help: 'the cache (default $KMODVM_CACHE_DIR, else ~/.cache/kmodvm)' },
  'runs-dir': {
    type: 'string',
    arg: 'DIR',
    group: 'run',
    field: 'runsDir',
    env: 'KMODVM_RUNS_DIR',
    path: true,
    help: 'where run directories go (default ./runs)',
  },
  'boot-timeout': { type: 'string', arg: 'S', group: 'run', field: 'timeouts.boot', help: 'boot to SSH, seconds (default 180)' },
  'build-timeout': { type: 'string', arg: 'S', group: 'run', field: 'timeouts.build', help: 'one make, seconds (default 600)' },
  'load-timeout': { type: 'string', arg: 'S', group: 'run', field: 'timeouts.load', help: 'insmod or rmmod, seconds (default 60)' },
  'app-timeout': { type: 'string', arg: 'S', group: 'run', field: 'timeouts.app', help: "a test's run line, seconds (default 60)" },
  memcheck: {
    type: 'boolean',
    group: 'run',
    field: 'memcheck',
    help: 'SLUB debugging in the guest, every slab checked after each test, a leak check at rmmod (docs/debug-kernel.md)',
  },
  'fail-nth': {
    type: 'string',
    arg: 'K',
    group: 'run',
    field: 'failNth',
    help: 'instead of the tests, load each module with its Nth allocation failed, N = 1..K (debug kernel; docs/debug-kernel.md)',
  },
  repeat: {
    type: 'string',
    arg: 'N',
    group: 'suite',
    field: 'repeat',
    help: 'run each chosen test N times, each after the first on a fresh resumed guest; a test that passes and fails is flaky',
  },
  'until-fail': { type: 'boolean', group: 'suite', field: 'untilFail', help: 'stop at the first failed test run' },
  shuffle: {
    type: 'string',
    arg: '[=SEED]',
    group: 'suite',
    field: 'shuffle',
    optional: 'random',
    help: 'run the tests (and their repeats) in a shuffled order; the seed is printed',
  },
  'same-guest': { type: 'boolean', group: 'suite', field: 'sameGuest', help: 'with --repeat: every run on the same guest' },
  repro: {
    type: 'string',
    arg: 'RUNDIR',
    group: 'suite',
    field: 'repro',
    path: true,
    help: "rerun exactly the tests that failed in RUNDIR (a run directory, CI's included), as they ran",
  },
  gdb: {
    type: 'string',
    arg: 'TEST',
    group: 'run',
    field: 'gdb',
    help: "gdb on the guest when TEST's modules are loaded, with their symbols; the test goes on when gdb continues (docs/debugging.md)",
  },
  'keep-on-fail': {
    type: 'string',
    arg: '[=NAME]',
    group: 'run',
    field: 'keepOnFail',
    optional: 'failed',
    help: 'stop at the first failed test and keep its guest up as instance NAME (default failed), for ssh, logs, gdb and down',
  },
  coverage: {
    type: 'boolean',
    group: 'run',
    field: 'coverage',
    help: "each test's line and branch coverage of your sources, and the suite's as lcov, HTML and Cobertura in the run directory (debug kernel; docs/coverage.md)",
  },
  dump: { type: 'boolean', group: 'run', field: 'dump', help: "on a guest's panic or oops, write its memory into the run directory, for kmodvm crash RUNDIR" },
  'kernel-symbols': {
    type: 'boolean',
    group: 'run',
    field: 'kernelSymbols',
    help: "fetch Debian's debug symbols of the stock kernel once into the cache (about 0.9 GB down, 0.6 GB kept), for crash and gdb",
  },
  'gdb-before-load': {
    type: 'boolean',
    group: 'run',
    field: 'gdbBeforeLoad',
    help: "with --gdb: attach before TEST's modules load; breakpoints in init and probe are hit (needs the kernel's symbols)",
  },
  batch: { type: 'string', arg: 'FILE', group: 'run', field: 'gdbBatch', path: true, help: 'with --gdb: run this gdb script without a terminal (CI)' },
  'dry-run': { type: 'boolean', group: 'run', field: 'dryRun', help: 'print the plan and the exact commands; run nothing' },
  verbose: { type: 'boolean', short: 'v', group: 'run', field: 'verbose', help: 'print the exact QEMU and mmdebstrap commands as they run' },
  name: { type: 'string', arg: 'NAME', group: 'instance', field: 'name', help: 'the instance (default default)' },
  help: { type: 'boolean', short: 'h', group: 'run', help: 'this help' },
} as const satisfies Record<string, OptionSpec>;

export type OptionName = keyof typeof OPTIONS;
