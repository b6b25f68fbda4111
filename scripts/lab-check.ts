// npm run lab:check -- N [--solution]: grades exercise N in the VM.
// Exit 0 only on a full score.
import { log, main } from './lib/cli/cli.ts';
import { loadConfig } from './lib/core/flags.ts';
import { KmodvmError } from './lib/core/errors.ts';
import { EXERCISES, findExercise, formatGrade, grade } from './lib/loop/lab.ts';
import { allChecks, summary, writeReports } from './lib/verdict/report.ts';
import { runVmTest } from './lib/loop/vm-test-run.ts';

await main(async () => {
  const argv = process.argv.slice(2);
  const solution = argv.includes('--solution');
  const rest = argv.filter((a) => a !== '--solution');
  const n = Number(rest.find((a) => /^\d+$/.test(a)));
  const e = findExercise(n);
  if (!e)
    throw new KmodvmError('usage', `no exercise ${JSON.stringify(rest[0] ?? '')}`, {
      hint: `choose one of ${EXERCISES.map((x) => `${x.n} (${x.title})`).join(', ')}`,
    });
  const src = solution ? e.solution : e.starter;
  const { config } = loadConfig([...rest.filter((a) => a !== String(n)), '--module-dir', src.moduleDir, '--app-dir', src.appDir, '--transcript', e.transcript]);
  const r = await runVmTest(config, { log: () => undefined });
  await writeReports(r);
  log(summary(r));
  const g = grade(allChecks(r));
  process.stdout.write(formatGrade(e, g, solution) + '\n');
  if (r.failure && ['setup', 'image', 'boot', 'usage', 'internal'].includes(r.failure)) return r.exitCode;
  return g.score === g.outOf ? 0 : 1;
});
