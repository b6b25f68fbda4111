// npm run lab:check -- N [--solution]: grades exercise N in the VM.
// Exit 0 only on a full score.

import path from 'node:path';
import { log, main } from './lib/cli/cli.ts';
import { helpFor, parseCommand } from './lib/cli/commands.ts';
import { defaultRoot } from './lib/core/config.ts';
import { KmodvmError } from './lib/core/errors.ts';
import { EXERCISES, findExercise, formatGrade, grade } from './lib/loop/lab.ts';
import { runVmTest } from './lib/loop/vm-test-run.ts';
import { allChecks } from './lib/verdict/model.ts';
import { summary } from './lib/verdict/summary.ts';
import { writeReports } from './lib/verdict/write-reports.ts';

await main(async () => {
  const argv = process.argv.slice(2);
  const first = parseCommand('lab-check', argv);
  if (first.help) {
    process.stdout.write(`${helpFor('lab-check')}\n`);
    return 0;
  }
  const solution = Boolean(first.own.solution);
  const n = Number(first.positionals[0]);
  const e = first.positionals.length === 1 && /^\d+$/.test(first.positionals[0]) ? findExercise(n) : undefined;
  if (!e)
    throw new KmodvmError('usage', `no exercise ${JSON.stringify(first.positionals.join(' '))}`, {
      hint: `choose one of ${EXERCISES.map((x) => `${x.n} (${x.title})`).join(', ')}`,
    });
  const src = solution ? e.solution : e.starter;
  const opts = argv.filter((a) => a !== first.positionals[0] && a !== '--solution');
  const at = (p: string): string => path.resolve(defaultRoot(), p);
  const { config } = parseCommand('lab-check', opts, process.env, { moduleDir: at(src.moduleDir), appDir: at(src.appDir), transcript: at(e.transcript) });
  const r = await runVmTest(config, { log: () => undefined });
  await writeReports(r);
  log(summary(r));
  const g = grade(allChecks(r));
  process.stdout.write(formatGrade(e, g, solution) + '\n');
  if (r.failure && ['setup', 'image', 'boot', 'usage', 'internal'].includes(r.failure)) return r.exitCode;
  return g.score === g.outOf ? 0 : 1;
});
