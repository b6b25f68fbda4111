// npm run vm:test / kmodvm test: from a fresh clone to a verdict. See README.md and docs/suite.md.
import { appendFile } from 'node:fs/promises';
import { log, main, workflowCommands } from './lib/cli/cli.ts';
import { helpFor, parseCommand } from './lib/cli/commands.ts';
import type { Config } from './lib/core/config.ts';
import { EXIT_CODES } from './lib/core/errors.ts';
import { runVmTest } from './lib/loop/vm-test-run.ts';
import { loadSuite } from './lib/suite/load.ts';
import { defaultSuiteFile } from './lib/suite/resolve.ts';
import { githubAnnotations, stepSummary } from './lib/verdict/github.ts';
import { flatChecks, type RunReport, worstOf } from './lib/verdict/model.ts';
import { summary } from './lib/verdict/summary.ts';
import { toTap, toTapMatrix } from './lib/verdict/tap.ts';
import { writeReports } from './lib/verdict/write-reports.ts';

/** The kernels to run on: --kernel or KMODVM_KERNEL when given, else the suite's kernels:, else the default. */
async function kernelsFor(c: Config, argv: string[]): Promise<string[]> {
  if (argv.some((a) => a === '--kernel' || a.startsWith('--kernel=')) || process.env.KMODVM_KERNEL || c.moduleDir) return [c.kernel];
  const s = await loadSuite(c.suite || defaultSuiteFile(c, process.cwd()), { update: c.update });
  return s.kernels ?? [c.kernel];
}

async function publish(r: RunReport, root: string): Promise<void> {
  await writeReports(r);
  log(summary(r));
  if (process.env.GITHUB_ACTIONS === 'true') {
    workflowCommands(githubAnnotations(flatChecks(r), root));
    if (process.env.GITHUB_STEP_SUMMARY) await appendFile(process.env.GITHUB_STEP_SUMMARY, stepSummary(r));
  }
}

await main(async () => {
  const argv = process.argv.slice(2);
  const { config, help } = parseCommand('test', argv);
  if (help) {
    process.stdout.write(`${helpFor('test')}\n`);
    return 0;
  }
  const kernels = await kernelsFor(config, argv);
  if (kernels.length === 1) {
    const c = kernels[0] === config.kernel ? config : parseCommand('test', [...argv, '--kernel', kernels[0]]).config;
    const r = await runVmTest(c, { log });
    if (config.dryRun) return 0;
    process.stdout.write(toTap(r));
    await publish(r, config.root);
    return r.exitCode;
  }
  // kernels: [a, b]: the suite on each, one after another; the worst exit code.
  const runs: { kernel: string; report: RunReport }[] = [];
  for (const k of kernels) {
    log(`kernel ${k}: the suite's matrix, ${runs.length + 1} of ${kernels.length}`);
    const r = await runVmTest(parseCommand('test', [...argv, '--kernel', k]).config, { log });
    if (!config.dryRun) await publish(r, config.root);
    runs.push({ kernel: k, report: r });
  }
  if (config.dryRun) return 0;
  process.stdout.write(toTapMatrix(runs));
  const worst = worstOf(runs.map((x) => ({ name: x.kernel, ok: x.report.verdict === 'pass', failure: x.report.failure, durationMs: 0 })));
  return worst ? EXIT_CODES[worst] : 0;
});
