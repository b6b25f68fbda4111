// kmodvm judge RUNDIR [--transcript FILE]: judge a saved run again, without a
// VM (suite/rejudge.ts). The same exit code as the run; with --transcript,
// every test against that transcript instead of its own.
import path from 'node:path';
import { splatRuleFiles } from '../../core/config.ts';
import { KmodvmError } from '../../core/errors.ts';
import { rejudge } from '../../suite/rejudge.ts';
import { loadRules } from '../../verdict/splat.ts';
import { summary } from '../../verdict/summary.ts';
import { toTap } from '../../verdict/tap.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const a = i.parse();
  if (a.positionals.length !== 1) throw new KmodvmError('usage', 'judge takes one run directory', { hint: 'kmodvm judge runs/<time>' });
  const rules = loadRules(splatRuleFiles(a.config));
  const transcript = typeof a.own.transcript === 'string' ? path.resolve(a.own.transcript) : undefined;
  const r = await rejudge(path.resolve(a.positionals[0]), rules, { transcript });
  process.stdout.write(toTap(r));
  log(summary(r));
  return r.exitCode;
}
