// kmodvm judge RUNDIR [--transcript FILE]: judge a saved run again, without a
// VM (scripts/lib/suite/rejudge.ts). The same exit code as the run; with
// --transcript, every test against that transcript instead of its own.

import path from 'node:path';
import { log, main } from './lib/cli/cli.ts';
import { helpFor, parseCommand } from './lib/cli/commands.ts';
import { splatRuleFiles } from './lib/core/config.ts';
import { KmodvmError } from './lib/core/errors.ts';
import { rejudge } from './lib/suite/rejudge.ts';
import { loadRules } from './lib/verdict/splat.ts';
import { summary } from './lib/verdict/summary.ts';
import { toTap } from './lib/verdict/tap.ts';

await main(async () => {
  const a = parseCommand('judge', process.argv.slice(2));
  if (a.help) {
    process.stdout.write(`${helpFor('judge')}\n`);
    return 0;
  }
  if (a.positionals.length !== 1) throw new KmodvmError('usage', 'judge takes one run directory', { hint: 'kmodvm judge runs/<time>' });
  const rules = loadRules(splatRuleFiles(a.config));
  const transcript = typeof a.own.transcript === 'string' ? path.resolve(a.own.transcript) : undefined;
  const r = await rejudge(path.resolve(a.positionals[0]), rules, { transcript });
  process.stdout.write(toTap(r));
  log(summary(r));
  return r.exitCode;
});
