// What a command is given: its arguments and its own parser (from the one
// table, cli/commands.ts), so that no command imports the table that lists it.
import type { Config } from '../../core/config.ts';
import type { Cli } from '../../core/flags.ts';

export interface Invocation {
  argv: readonly string[];
  /** This command's parser: its own flags, nothing else; argv defaults to the command's. */
  parse(argv?: readonly string[], set?: Partial<Config>): Cli;
  /** For a command with a command of its own after its options (ssh): the leading options, and the rest intact. */
  split(argv: readonly string[]): { opts: string[]; rest: string[] };
}

export type CommandRun = (i: Invocation) => Promise<number>;
