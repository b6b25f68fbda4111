// kmodvm lab-check N [--solution] (npm run lab:check): grades exercise N in
// the VM. Exit 0 only on a full score.
import path from 'node:path';
import { defaultRoot } from '../../core/config.ts';
import { KmodvmError } from '../../core/errors.ts';
import { EXERCISES, findExercise, formatGrade, grade } from '../../loop/lab.ts';
import { runVmTest } from '../../loop/vm-test-run.ts';
import { allChecks } from '../../verdict/model.ts';
import { summary } from '../../verdict/summary.ts';
import { writeReports } from '../../verdict/write-reports.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const argv = i.argv;
  const first = i.parse();
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
  const given = e.suite
    ? { suite: at(solution ? e.suite.solution : e.suite.starter) }
    : { moduleDir: at(src.moduleDir), appDir: at(src.appDir), transcript: at(e.transcript) };
  const { config } = i.parse(opts, given);
  const r = await runVmTest(config, { log: () => undefined });
  await writeReports(r);
  log(summary(r));
  const g = grade(allChecks(r));
  process.stdout.write(formatGrade(e, g, solution) + '\n');
  if (r.failure && ['setup', 'image', 'boot', 'usage', 'internal'].includes(r.failure)) return r.exitCode;
  return g.score === g.outOf ? 0 : 1;
}
