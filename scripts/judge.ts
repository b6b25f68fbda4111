// kmodvm judge RUNDIR [--transcript FILE]: judge a saved run again, without a
// VM (scripts/lib/suite/rejudge.ts). The same exit code as the run; with
// --transcript, every test against that transcript instead of its own.
import { parseArgs } from 'node:util';
import { log, main } from './lib/cli/cli.ts';
import { defaultRoot } from './lib/core/config.ts';
import { KmodvmError } from './lib/core/errors.ts';
import { loadRules } from './lib/verdict/splat.ts';
import { rejudge } from './lib/suite/rejudge.ts';
import { summary, toTap } from './lib/verdict/report.ts';
import path from 'node:path';

const HELP = `usage: kmodvm judge RUNDIR [--transcript FILE] [--splat-rules FILE]
  Judges the run in RUNDIR again from what it kept (tests/<name>/evidence.json), without a VM.
  --transcript FILE   judge every test against this transcript instead of its own
  --splat-rules FILE  extra splat patterns and allow-list over qemu/splat.json`;

await main(async () => {
  let a: { values: { transcript?: string; 'splat-rules'?: string; help?: boolean }; positionals: string[] };
  try {
    a = parseArgs({
      args: process.argv.slice(2),
      options: { transcript: { type: 'string' }, 'splat-rules': { type: 'string' }, help: { type: 'boolean', short: 'h' } },
      allowPositionals: true,
      strict: true,
    });
  } catch (e) {
    throw new KmodvmError('usage', (e as Error).message, { hint: 'kmodvm judge --help' });
  }
  if (a.values.help) {
    process.stdout.write(`${HELP}\n`);
    return 0;
  }
  if (a.positionals.length !== 1) throw new KmodvmError('usage', 'judge takes one run directory', { hint: 'kmodvm judge runs/<time>' });
  const rules = loadRules([path.join(defaultRoot(), 'qemu/splat.json'), ...(a.values['splat-rules'] ? [path.resolve(a.values['splat-rules'])] : [])]);
  const r = await rejudge(path.resolve(a.positionals[0]), rules, { transcript: a.values.transcript && path.resolve(a.values.transcript) });
  process.stdout.write(toTap(r));
  log(summary(r));
  return r.exitCode;
});
