// The command line and the environment, as a Config: KMODVM_* variables,
// then flags, over the defaults (config.ts). Unknown flags are bad input.
import path from 'node:path';
import { parseArgs } from 'node:util';
import { type Config, defaultConfig, defaultRoot, type Timeouts, validateConfig } from './config.ts';
import { KmodvmError } from './errors.ts';

/** Reads KMODVM_* variables. */
export function fromEnv(env: NodeJS.ProcessEnv): Partial<Config> {
  const out: Record<string, unknown> = {};
  if (env.KMODVM_ACCEL) out.accel = env.KMODVM_ACCEL;
  if (env.KMODVM_PROFILE) out.profile = env.KMODVM_PROFILE;
  if (env.KMODVM_KERNEL) out.kernel = env.KMODVM_KERNEL;
  if (env.KMODVM_BUILD) out.build = env.KMODVM_BUILD;
  if (env.KMODVM_REPLAY) out.replay = env.KMODVM_REPLAY;
  if (env.KMODVM_RESUME) out.resume = env.KMODVM_RESUME;
  if (env.KMODVM_RUNS_DIR) out.runsDir = env.KMODVM_RUNS_DIR;
  if (env.KMODVM_MIRROR) out.mirror = env.KMODVM_MIRROR;
  if (env.KMODVM_MEMORY) out.memoryMiB = env.KMODVM_MEMORY;
  if (env.KMODVM_CPUS) out.cpus = env.KMODVM_CPUS;
  if (env.KMODVM_SHARD) out.shard = env.KMODVM_SHARD;
  return out as Partial<Config>;
}

export const CLI_OPTIONS = {
  accel: { type: 'string' },
  build: { type: 'string' },
  'cache-dir': { type: 'string' },
  'runs-dir': { type: 'string' },
  mirror: { type: 'string' },
  memory: { type: 'string' },
  cpus: { type: 'string' },
  'module-dir': { type: 'string' },
  'app-dir': { type: 'string' },
  transcript: { type: 'string' },
  suite: { type: 'string' },
  only: { type: 'string', multiple: true },
  shard: { type: 'string' },
  update: { type: 'boolean' },
  recipe: { type: 'string' },
  kernel: { type: 'string' },
  profile: { type: 'string' },
  'splat-rules': { type: 'string' },
  'kernel-image': { type: 'string' },
  'kernel-build-dir': { type: 'string' },
  'kernel-initrd': { type: 'string' },
  'boot-timeout': { type: 'string' },
  'build-timeout': { type: 'string' },
  'load-timeout': { type: 'string' },
  'app-timeout': { type: 'string' },
  'dry-run': { type: 'boolean' },
  'no-replay': { type: 'boolean' },
  'no-resume': { type: 'boolean' },
  name: { type: 'string' },
  reuse: { type: 'string' },
  follow: { type: 'boolean', short: 'f' },
  force: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export interface Cli {
  config: Config;
  help: boolean;
  follow: boolean;
  positionals: string[];
}

/** Builds the configuration from argv and env. Unknown flags are a usage error. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, root = defaultRoot(), cwd = process.cwd()): Cli {
  const parse = () => parseArgs({ args: argv, options: CLI_OPTIONS, allowPositionals: true, strict: true });
  let parsed: ReturnType<typeof parse>;
  try {
    parsed = parse();
  } catch (e) {
    throw new KmodvmError('usage', (e as Error).message, { hint: 'run with --help for the flags' });
  }
  const v = parsed.values;
  const cli: Record<string, unknown> = {};
  const map: [keyof typeof v, string][] = [
    ['accel', 'accel'],
    ['build', 'build'],
    ['cache-dir', 'cacheDir'],
    ['runs-dir', 'runsDir'],
    ['mirror', 'mirror'],
    ['memory', 'memoryMiB'],
    ['cpus', 'cpus'],
    ['module-dir', 'moduleDir'],
    ['app-dir', 'appDir'],
    ['transcript', 'transcript'],
    ['suite', 'suite'],
    ['only', 'only'],
    ['shard', 'shard'],
    ['update', 'update'],
    ['recipe', 'recipe'],
    ['kernel', 'kernel'],
    ['profile', 'profile'],
    ['splat-rules', 'splatRules'],
    ['kernel-image', 'kernelImage'],
    ['kernel-build-dir', 'kernelBuildDir'],
    ['kernel-initrd', 'kernelInitrd'],
    ['dry-run', 'dryRun'],
    ['name', 'name'],
    ['reuse', 'reuse'],
  ];
  for (const [flag, field] of map) if (v[flag] !== undefined) cli[field] = v[flag];
  if (v['no-replay']) cli.replay = false;
  if (v['no-resume']) cli.resume = false;
  const timeouts: Partial<Timeouts> = {};
  if (v['boot-timeout'] !== undefined) timeouts.boot = v['boot-timeout'] as unknown as number;
  if (v['build-timeout'] !== undefined) timeouts.build = v['build-timeout'] as unknown as number;
  if (v['load-timeout'] !== undefined) timeouts.load = v['load-timeout'] as unknown as number;
  if (v['app-timeout'] !== undefined) timeouts.app = v['app-timeout'] as unknown as number;
  // Paths the user typed are the user's: relative to the current directory.
  for (const k of ['moduleDir', 'appDir', 'transcript', 'suite'] as const)
    if (typeof cli[k] === 'string' && cli[k]) cli[k] = path.resolve(cwd, cli[k] as string);
  const config = validateConfig({ ...fromEnv(env), ...cli, timeouts }, defaultConfig(env, root, cwd));
  return { config, help: Boolean(v.help), follow: Boolean(v.follow), positionals: parsed.positionals };
}
