// kmodvm crash RUNDIR [--batch FILE] [--kernel-symbols]: a run's crash dump in crash, with the kernel's and the modules' symbols (debug/crash.ts, docs/debugging.md).
import path from 'node:path';
import { KmodvmError } from '../../core/errors.ts';
import { openCrash } from '../../debug/crash.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const a = i.parse();
  if (a.positionals.length !== 1)
    throw new KmodvmError('usage', 'crash takes one run directory (or a dump directory in one)', { hint: 'kmodvm crash runs/<time>' });
  const batch = typeof a.own.batch === 'string' ? path.resolve(a.own.batch) : '';
  return openCrash({ ...a.config, gdbBatch: batch }, path.resolve(a.positionals[0]), log);
}
