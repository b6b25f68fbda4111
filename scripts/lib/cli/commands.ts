// Every command, once: what it does, its positionals, its options picked
// from the one option table (core/options.ts) plus its own, and the module
// that runs it (cli/commands/<name>.ts, loaded when it is the one asked for,
// so `kmodvm ssh` starts without the pipeline). Its help and its parser come
// from here; it takes no flag that is not in its list.
import type { Config } from '../core/config.ts';
import { EXIT_CODES, KmodvmError, VM_FAILURES } from '../core/errors.ts';
import { type Cli, loadConfig } from '../core/flags.ts';
import { type Group, OPTIONS, type OptionSpec } from '../core/options.ts';
import { main, setShowCommands } from './cli.ts';
import type { CommandRun } from './commands/invocation.ts';

export interface Command {
  /** The module that runs it; a literal import, so the bundler makes each command a chunk of its own. */
  load: () => Promise<{ run: CommandRun }>;
  npm?: string;
  args?: string;
  about: string;
  options: readonly string[];
  own?: Record<string, OptionSpec>;
  /** What follows the options, for help (vm:ssh: the guest command). */
  tail?: string;
}

const SUITE = ['suite', 'only', 'shard', 'update', 'module-dir', 'app-dir', 'transcript'] as const;
const GUEST = [
  'kernel',
  'accel',
  'profile',
  'memory',
  'cpus',
  'recipe',
  'mirror',
  'no-resume',
  'guest-net',
  'kernel-image',
  'kernel-build-dir',
  'kernel-initrd',
] as const;
const BUILD = ['build', 'no-replay'] as const;
const TIMEOUTS = ['boot-timeout', 'build-timeout', 'load-timeout', 'app-timeout'] as const;
const RUN = ['splat-rules', 'memcheck', 'fail-nth', 'cache-dir', 'runs-dir', ...TIMEOUTS, 'dry-run', 'verbose', 'help'] as const;

export const COMMANDS = {
  test: {
    load: () => import('./commands/test.ts'),
    npm: 'npm run vm:test --',
    about: 'build, load and judge the suite (./kmodvm.yaml, or --suite FILE) in a fresh guest',
    options: [
      ...SUITE,
      'repeat',
      'until-fail',
      'shuffle',
      'same-guest',
      'repro',
      ...GUEST,
      'reuse',
      ...BUILD,
      ...RUN,
      'gdb',
      'gdb-before-load',
      'batch',
      'keep-on-fail',
      'coverage',
      'dump',
      'kernel-symbols',
    ],
  },
  up: {
    load: () => import('./commands/up.ts'),
    npm: 'npm run vm:up --',
    about: 'boot an instance that stays up, to SSH into',
    options: ['name', ...GUEST, 'cache-dir', 'boot-timeout', 'verbose', 'help'],
  },
  ssh: {
    load: () => import('./commands/ssh.ts'),
    npm: 'npm run vm:ssh --',
    about: 'a shell on the instance, or one command',
    options: ['name', 'cache-dir', 'help'],
    tail: '[--] [COMMAND ARG...]',
  },
  logs: {
    load: () => import('./commands/logs.ts'),
    npm: 'npm run vm:logs --',
    about: "the instance's serial console",
    options: ['name', 'cache-dir', 'follow', 'help'],
    own: { follow: { type: 'boolean', short: 'f', group: 'command', help: 'keep printing what it adds' } },
  },
  mux: {
    load: () => import('./commands/mux.ts'),
    about: '(started by up) keeps one SSH connection to the instance, so ssh -- CMD needs no handshake',
    options: ['name', 'cache-dir', 'help'],
  },
  status: {
    load: () => import('./commands/status.ts'),
    npm: 'npm run vm:status --',
    about: 'the running instances',
    options: ['cache-dir', 'help'],
  },
  gdb: {
    load: () => import('./commands/gdb.ts'),
    about: "gdb on the instance, with its out-of-tree modules' symbols at their addresses (--batch FILE: a script, no terminal)",
    options: ['name', 'batch', 'kernel-symbols', 'mirror', 'verbose', 'cache-dir', 'help'],
  },
  crash: {
    load: () => import('./commands/crash.ts'),
    args: 'RUNDIR',
    about: "a run's crash dump (--dump) in crash, with the kernel's and the modules' symbols, the panic's backtrace first",
    options: ['batch', 'kernel-symbols', 'mirror', 'cache-dir', 'verbose', 'help'],
    own: { batch: { type: 'string', arg: 'FILE', group: 'command', help: 'run these crash commands without a terminal (CI), then quit' } },
  },
  down: {
    load: () => import('./commands/down.ts'),
    npm: 'npm run vm:down --',
    about: 'power an instance off',
    options: ['name', 'cache-dir', 'help'],
  },
  watch: {
    load: () => import('./commands/watch.ts'),
    npm: 'npm run vm:watch --',
    about: 'rebuild and rerun the suite on every save, on a kept instance',
    options: ['name', ...SUITE.filter((o) => o !== 'shard' && o !== 'update'), ...GUEST, ...BUILD, ...RUN.filter((o) => o !== 'dry-run')],
  },
  image: {
    load: () => import('./commands/image.ts'),
    npm: 'npm run vm:image --',
    args: 'build|info|key|verify|prune|export FILE|import FILE',
    about: 'the cached guest image: build it (--force: again), show it, its key, verify its files, prune old ones, export or import it',
    options: ['kernel', 'recipe', 'mirror', 'cache-dir', 'force', 'trust', 'dry-run', 'verbose', 'help'],
    own: {
      force: { type: 'boolean', group: 'command', help: 'build again even when the image is cached' },
      trust: { type: 'string', arg: 'FINGERPRINT', group: 'command', help: 'import: take the archive with this fingerprint (export prints it)' },
    },
  },
  judge: {
    load: () => import('./commands/judge.ts'),
    npm: 'npm run judge --',
    args: 'RUNDIR',
    about: 'judge a saved run again, without a VM; the same exit code as the run',
    options: ['transcript', 'splat-rules', 'help'],
    own: { transcript: { type: 'string', arg: 'FILE', group: 'command', help: 'judge every test against this transcript instead of its own' } },
  },
  bench: {
    load: () => import('./commands/bench.ts'),
    npm: 'npm run bench --',
    about: 'every figure, measured in this one run, as medians and ratios (runs/bench-<time>/)',
    options: ['runs', 'rows', 'kernel', 'accel', 'memory', 'cpus', 'cache-dir', 'runs-dir', 'verbose', 'help'],
    own: {
      runs: { type: 'string', arg: 'N', group: 'command', help: 'samples per row (default 5)' },
      rows: { type: 'string', arg: 'KEY,KEY', group: 'command', help: 'measure only these rows (e.g. floor,boot_to_ssh)' },
    },
  },
  check: {
    load: () => import('./commands/check.ts'),
    about:
      "the static checks alone, no VM: the suite's modules built with W=1 and sparse, and checkpatch on its sources; exit 16 with --strict (or static: strict) on any finding",
    options: ['suite', 'module-dir', 'kernel', 'recipe', 'mirror', 'cache-dir', 'build-timeout', 'strict', 'verbose', 'help'],
    own: { strict: { type: 'boolean', group: 'command', help: 'fail (exit 16) on any finding, whatever the suite says' } },
  },
  preflight: {
    load: () => import('./commands/preflight.ts'),
    about: "check the host's tools, and install a missing one through apt when root or passwordless sudo allows (else print the command)",
    options: ['help'],
  },
  'lab-check': {
    load: () => import('./commands/lab-check.ts'),
    npm: 'npm run lab:check --',
    args: 'N',
    about: 'grade lab exercise N in the VM; exit 0 only on a full score',
    options: ['solution', 'kernel', 'accel', 'build', 'cache-dir', 'runs-dir', 'verbose', 'help'],
    own: { solution: { type: 'boolean', group: 'command', help: "grade the exercise's model solution instead of the starter" } },
  },
} as const satisfies Record<string, Command>;

export type CommandName = keyof typeof COMMANDS;

const GROUPS: Record<Group, string> = {
  suite: 'The suite (docs/suite.md)',
  guest: 'The guest',
  build: 'The build',
  instance: 'The instance',
  command: 'This command',
  run: 'Run',
};

function optionOf(c: Command, n: string): OptionSpec {
  return c.own?.[n] ?? (OPTIONS as Record<string, OptionSpec>)[n];
}

/** The help text of a command, from its table. */
export function helpFor(name: CommandName): string {
  const c: Command = COMMANDS[name];
  const head = [
    `usage: kmodvm ${name} ${c.args ? `${c.args} ` : ''}[options]${c.tail ? ` ${c.tail}` : ''}${c.npm ? `   (or: ${c.npm} ...)` : ''}`,
    `  ${c.about}`,
  ];
  const byGroup = new Map<Group, string[]>();
  for (const n of c.options) {
    const o = optionOf(c, n);
    const flag = `${o.short ? `-${o.short}, ` : ''}--${n}${o.arg ? ` ${o.arg}` : ''}`;
    const env = o.env ? ` (env ${o.env})` : '';
    byGroup.set(o.group, [...(byGroup.get(o.group) ?? []), `  ${flag.padEnd(30)} ${o.help}${env}`]);
  }
  const body = (Object.keys(GROUPS) as Group[]).filter((g) => byGroup.has(g)).flatMap((g) => [`${GROUPS[g]}:`, ...(byGroup.get(g) ?? [])]);
  return [...head, ...body, exitCodesLine()].join('\n');
}

/** The exit codes' line of every --help, from the table itself (#29.18: it once said 10-15, and there is no 15). */
export function exitCodesLine(): string {
  const span = (codes: number[]): string => (codes.length > 1 ? `${Math.min(...codes)}-${Math.max(...codes)}` : String(codes[0]));
  const entries = Object.entries(EXIT_CODES) as [keyof typeof EXIT_CODES, number][];
  const code = entries.filter(([k, v]) => v >= 10 && v < 70 && !VM_FAILURES.has(k)).map(([, v]) => v);
  const vm = entries.filter(([k]) => VM_FAILURES.has(k)).map(([, v]) => v);
  return `Exit codes: README.md "Exit codes" (0 pass; ${EXIT_CODES.transcript}, ${span(code)} the code under test; ${EXIT_CODES.usage} bad input; ${span(vm)} the host, image, VM or upload; ${EXIT_CODES.internal} kmodvm).`;
}

/** The top-level help: one line per command. */
export function commandsHelp(): string {
  const rows = (Object.keys(COMMANDS) as CommandName[]).map((n) => {
    const c: Command = COMMANDS[n];
    return `  ${n.padEnd(10)} ${c.about}${c.args ? ` (${c.args})` : ''}`;
  });
  return ['usage: kmodvm COMMAND [options]   (kmodvm COMMAND --help lists its options)', ...rows].join('\n');
}

/** Parses argv for this command only: its own flags, nothing else. */
export function parseCommand(name: CommandName, argv: string[], env: NodeJS.ProcessEnv = process.env, set?: Partial<Config>): Cli {
  const c: Command = COMMANDS[name];
  const cli = loadConfig(argv, env, undefined, process.cwd(), { names: c.options, extra: c.own, hint: `kmodvm ${name} --help lists its flags`, set });
  setShowCommands(cli.config.verbose || cli.config.dryRun);
  return cli;
}

/**
 * For a command that takes a command of its own after its options (ssh): the
 * leading options that are the command's, and everything after them, which
 * stays intact (`kmodvm ssh --name x ls -l`). A `--` ends the options.
 */
export function splitLeading(name: CommandName, argv: readonly string[]): { opts: string[]; rest: string[] } {
  const c: Command = COMMANDS[name];
  let i = 0;
  while (i < argv.length) {
    const a = argv[i];
    if (a === '--') return { opts: argv.slice(0, i), rest: argv.slice(i + 1) };
    const m = /^--?([\w-]+)(=.*)?$/.exec(a);
    const n = m && (a.startsWith('--') ? m[1] : c.options.find((x) => optionOf(c, x).short === m[1]));
    if (!n || !c.options.includes(n)) break;
    i += optionOf(c, n).type === 'string' && !m[2] ? 2 : 1;
  }
  return { opts: argv.slice(0, i), rest: argv.slice(i) };
}

/** `kmodvm COMMAND ARGS...`: the command from the table, run with its own parser; help and a wrong command are answered here. */
export async function runCli(argv: readonly string[]): Promise<void> {
  const [name, ...rest] = argv;
  await main(async () => {
    if (!name || name === '--help' || name === '-h' || name === 'help') {
      process.stdout.write(`${commandsHelp()}\n`);
      return name ? 0 : 2;
    }
    if (!Object.hasOwn(COMMANDS, name)) throw new KmodvmError('usage', `no command "${name}"`, { hint: 'run kmodvm --help for the commands' });
    const n = name as CommandName;
    const c: Command = COMMANDS[n];
    const own = c.tail ? splitLeading(n, rest).opts : rest;
    if (own.some((a) => a === '--help' || a === '-h')) {
      process.stdout.write(`${helpFor(n)}\n`);
      return 0;
    }
    const { run } = await c.load();
    return run({ argv: rest, parse: (a = rest, set) => parseCommand(n, [...a], process.env, set), split: (a) => splitLeading(n, [...a]) });
  });
}
