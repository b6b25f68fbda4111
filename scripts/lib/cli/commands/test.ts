// kmodvm test (npm run vm:test): from a fresh clone to a verdict, on each of
// the suite's kernels. See README.md and docs/suite.md.
import { appendFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../../core/config.ts';
import { EXIT_CODES } from '../../core/errors.ts';
import { kmodvmVersion, readRepro, reproConfig, reproDrift, reproOf, sha256Of, writeRepro } from '../../loop/repro.ts';
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

async function publish(r: RunReport, c: Parameters<typeof reproOf>[0]): Promise<void> {
  const root = c.root;
  await writeReports(r);
  // A failed run leaves the way to run it again (loop/repro.ts).
  if (r.verdict === 'fail' && r.runDir) {
    await writeRepro(r.runDir, reproOf(c, r, process.cwd()));
    log(`reproduce: sh ${path.join(r.runDir, 'reproduce.sh')} (or kmodvm test --repro ${r.runDir}) reruns what failed`);
  }
  log(summary(r));
  if (process.env.GITHUB_ACTIONS === 'true') {
    workflowCommands(githubAnnotations(flatChecks(r), root));
    if (process.env.GITHUB_STEP_SUMMARY) await appendFile(process.env.GITHUB_STEP_SUMMARY, stepSummary(r));
  }
}

/** The kernels to run on: --kernel or KMODVM_KERNEL when given (or --repro's), else the suite's kernels:, else the default. */
async function kernelsFor(i: Invocation, set: Partial<Config>): Promise<string[]> {
  const { config: c, given } = i.parse(undefined, set);
  if (given.has('kernel') || c.moduleDir || set.kernel) return [c.kernel];
  const s = await loadSuite(c.suite || defaultSuiteFile(c, process.cwd()), { update: c.update });
  return s.kernels ?? [c.kernel];
}

/** --repro RUNDIR: the failed run's fields, and what differs here from it. */
async function reproFields(c: Pick<Config, 'repro' | 'root'>): Promise<{ set: Partial<Config>; drift: (r: RunReport) => string[] }> {
  if (!c.repro) return { set: {}, drift: () => [] };
  const x = await readRepro(c.repro);
  const set = reproConfig(x, c.repro, process.cwd());
  log(`reproducing ${c.repro}: ${x.tests.length ? x.tests.join(', ') : 'its tests'} on ${x.kernel}${x.failure ? `, which failed with ${x.failure}` : ''}`);
  const here = (imageKey?: string) => ({ kmodvm: kmodvmVersion(c.root), suiteSha256: sha256Of(set.suite!), imageKey });
  for (const l of reproDrift(x, here())) log(`note: ${l}`);
  return { set, drift: (r) => reproDrift(x, here(r.imageKey)).filter((l) => l.startsWith('the image')) };
}

export async function run(i: Invocation): Promise<number> {
  const { set, drift } = await reproFields(i.parse().config);
  const { config } = i.parse(undefined, set);
  const kernels = await kernelsFor(i, set);
  const on = (kernel: string) => (kernel === config.kernel ? config : i.parse(undefined, { ...set, kernel }).config);
  if (kernels.length === 1) {
    const r = await runVmTest(on(kernels[0]), { log });
    if (config.dryRun) return 0;
    process.stdout.write(toTap(r));
    await publish(r, config);
    for (const l of drift(r)) log(`note: ${l}`);
    return r.exitCode;
  }
  // kernels: [a, b]: the suite on each, one after another; the worst exit code.
  const runs: { kernel: string; report: RunReport }[] = [];
  for (const k of kernels) {
    log(`kernel ${k}: the suite's matrix, ${runs.length + 1} of ${kernels.length}`);
    const r = await runVmTest(on(k), { log });
    if (!config.dryRun) await publish(r, on(k));
    runs.push({ kernel: k, report: r });
  }
  if (config.dryRun) return 0;
  process.stdout.write(toTapMatrix(runs));
  const worst = worstOf(runs.map((x) => ({ name: x.kernel, ok: x.report.verdict === 'pass', failure: x.report.failure, durationMs: 0 })));
  return worst ? EXIT_CODES[worst] : 0;
}
