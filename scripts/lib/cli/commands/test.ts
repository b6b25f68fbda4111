// kmodvm test (npm run vm:test): from a fresh clone to a verdict, on each of
// the suite's kernels. See README.md and docs/suite.md.
import { appendFile } from 'node:fs/promises';
import { EXIT_CODES } from '../../core/errors.ts';
import { runVmTest } from '../../loop/vm-test-run.ts';
import { loadSuite } from '../../suite/load.ts';
import { defaultSuiteFile } from '../../suite/resolve.ts';
import { githubAnnotations, stepSummary } from '../../verdict/github.ts';
import { flatChecks, type RunReport, worstOf } from '../../verdict/model.ts';
import { summary } from '../../verdict/summary.ts';
import { toTap, toTapMatrix } from '../../verdict/tap.ts';
import { writeReports } from '../../verdict/write-reports.ts';
import { log, workflowCommands } from '../cli.ts';
import type { Invocation } from './invocation.ts';

async function publish(r: RunReport, root: string): Promise<void> {
  await writeReports(r);
  log(summary(r));
  if (process.env.GITHUB_ACTIONS === 'true') {
    workflowCommands(githubAnnotations(flatChecks(r), root));
    if (process.env.GITHUB_STEP_SUMMARY) await appendFile(process.env.GITHUB_STEP_SUMMARY, stepSummary(r));
  }
}

/** The kernels to run on: --kernel or KMODVM_KERNEL when given, else the suite's kernels:, else the default. */
async function kernelsFor(i: Invocation): Promise<string[]> {
  const { config: c, given } = i.parse();
  if (given.has('kernel') || c.moduleDir) return [c.kernel];
  const s = await loadSuite(c.suite || defaultSuiteFile(c, process.cwd()), { update: c.update });
  return s.kernels ?? [c.kernel];
}

export async function run(i: Invocation): Promise<number> {
  const { config } = i.parse();
  const kernels = await kernelsFor(i);
  const on = (kernel: string) => (kernel === config.kernel ? config : i.parse(undefined, { kernel }).config);
  if (kernels.length === 1) {
    const r = await runVmTest(on(kernels[0]), { log });
    if (config.dryRun) return 0;
    process.stdout.write(toTap(r));
    await publish(r, config.root);
    return r.exitCode;
  }
  // kernels: [a, b]: the suite on each, one after another; the worst exit code.
  const runs: { kernel: string; report: RunReport }[] = [];
  for (const k of kernels) {
    log(`kernel ${k}: the suite's matrix, ${runs.length + 1} of ${kernels.length}`);
    const r = await runVmTest(on(k), { log });
    if (!config.dryRun) await publish(r, config.root);
    runs.push({ kernel: k, report: r });
  }
  if (config.dryRun) return 0;
  process.stdout.write(toTapMatrix(runs));
  const worst = worstOf(runs.map((x) => ({ name: x.kernel, ok: x.report.verdict === 'pass', failure: x.report.failure, durationMs: 0 })));
  return worst ? EXIT_CODES[worst] : 0;
}
