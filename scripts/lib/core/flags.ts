// The command line and the environment, as a Config: KMODVM_* variables,
// then flags, over the defaults (config.ts). Which flags a command takes is
// its own list from the one option table (options.ts); any other flag is bad
// input.
import path from 'node:path';
import { type ParseArgsConfig, parseArgs } from 'node:util';
import { type Config, defaultConfig, defaultRoot, type Timeouts, validateConfig } from './config.ts';
import { KmodvmError } from './errors.ts';
import { OPTIONS, type OptionName, type OptionSpec } from './options.ts';

const ALL = Object.keys(OPTIONS) as OptionName[];
const spec = (n: string): OptionSpec => (OPTIONS as Record<string, OptionSpec>)[n];

/** Reads the KMODVM_* variables that the option table names. */
export function fromEnv(env: NodeJS.ProcessEnv, cwd = process.cwd()): Partial<Config> {
  const out: Record<string, unknown> = {};
  for (const n of ALL) {
    const o = spec(n);
    // A path from the environment, like one from a flag, is the user's: relative to where they are, not to kmodvm's install.
    if (o.env && o.field && env[o.env]) out[o.field] = o.path ? path.resolve(cwd, env[o.env]!) : env[o.env];
  }
  return out as Partial<Config>;
}

/** Options for parseArgs: the command's own, from the table, plus its extra ones. */
export function parseOptions(names: readonly string[], extra: Record<string, OptionSpec> = {}): NonNullable<ParseArgsConfig['options']> {
  const out: NonNullable<ParseArgsConfig['options']> = {};
  for (const n of names) {
    const o = extra[n] ?? spec(n);
    out[n] = { type: o.type, ...(o.short ? { short: o.short } : {}), ...(o.multiple ? { multiple: true } : {}) };
  }
  return out;
}

export interface Cli {
  config: Config;
  help: boolean;
  /** The command's own options (those without a Config field), as parsed. */
  own: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
  /** The Config fields the command line or the environment gave (not defaults): e.g. whether a kernel was asked for. */
  given: ReadonlySet<string>;
}

export interface LoadOptions {
  /** The option names this command takes (default: all in the table). */
  names?: readonly string[];
  /** The command's own options, not in the table. */
  extra?: Record<string, OptionSpec>;
  hint?: string;
  /** Fields the command sets itself, over the flags (lab-check's exercise). */
  set?: Partial<Config>;
}

/** A string option that may be given bare (OptionSpec.optional) gets its default value written in: `--shuffle` becomes `--shuffle=random`; `--shuffle 7` stays. */
export function withOptionalValues(argv: readonly string[], names: readonly string[], extra: Record<string, OptionSpec> = {}): string[] {
  const out: string[] = [];
  for (let k = 0; k < argv.length; k++) {
    const a = argv[k];
    if (a === '--') return [...out, ...argv.slice(k)];
    const n = a.startsWith('--') ? a.slice(2) : '';
    const o = n && names.includes(n) ? (extra[n] ?? spec(n)) : undefined;
    const next = argv[k + 1];
    out.push(o?.optional && (next === undefined || next.startsWith('-') || !/^\d+$/.test(next)) ? `${a}=${o.optional}` : a);
  }
  return out;
}

/** Builds the configuration from argv and env. A flag the command does not take is a usage error. */
export function loadConfig(argv: string[], env: NodeJS.ProcessEnv = process.env, root = defaultRoot(), cwd = process.cwd(), o: LoadOptions = {}): Cli {
  const names = o.names ?? ALL;
  let parsed: { values: Record<string, string | boolean | (string | boolean)[] | undefined>; positionals: string[] };
  try {
    parsed = parseArgs({ args: withOptionalValues(argv, names, o.extra), options: parseOptions(names, o.extra), allowPositionals: true, strict: true });
  } catch (e) {
    throw new KmodvmError('usage', (e as Error).message, { hint: o.hint ?? 'run with --help for the flags' });
  }
  const cli: Record<string, unknown> = {};
  const timeouts: Partial<Record<keyof Timeouts, unknown>> = {};
  const own: Cli['own'] = {};
  for (const n of names) {
    const v = parsed.values[n];
    if (v === undefined) continue;
    const s = o.extra?.[n] ?? spec(n);
    if (!s.field) own[n] = v as string | boolean | string[];
    else if (s.field.startsWith('timeouts.')) timeouts[s.field.slice(9) as keyof Timeouts] = v;
    else if (s.negates) cli[s.field] = !v;
    else cli[s.field] = s.path && typeof v === 'string' && v ? path.resolve(cwd, v) : v;
  }
  const given = { ...fromEnv(env, cwd), ...cli };
  const config = validateConfig({ ...given, ...o.set, timeouts: timeouts as Partial<Timeouts> }, defaultConfig(env, root, cwd));
  return { config, help: Boolean(parsed.values.help), own, positionals: parsed.positionals, given: new Set(Object.keys(given)) };
}
