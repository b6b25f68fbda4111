// npm run vm:test / kmodvm test: from a fresh clone to a verdict. See README.md and docs/suite.md.
import { appendFile } from 'node:fs/promises';
import { log, main } from './lib/cli/cli.ts';
import type { Config } from './lib/core/config.ts';
import { loadConfig } from './lib/core/flags.ts';
import { flatChecks, githubAnnotations, stepSummary, summary, toTap, toTapMatrix, worstOf, writeReports, type RunReport } from './lib/verdict/report.ts';
import { EXIT_CODES } from './lib/core/errors.ts';
import { loadSuite } from './lib/suite/load.ts';
import { defaultSuiteFile } from './lib/suite/resolve.ts';
import { runVmTest } from './lib/loop/vm-test-run.ts';

const HELP = `usage: npm run vm:test -- [options]      (or: npx kmodvm test [options])
The suite (docs/suite.md):
  --suite FILE           the suite file (default ./kmodvm.yaml, else this checkout's own)
  --only NAME|GLOB       run only these tests (repeatable)
  --shard I/N            run the I-th of N shares of the tests (round-robin; env KMODVM_SHARD)
  --update               write each transcript that is missing or no longer matches, from the run
  --module-dir DIR [--app-dir DIR] [--transcript FILE]   a one-test suite without a suite file
The guest:
  --kernel NAME          a recipe in qemu/kernels/ (default debian-12, or the suite's kernels:)
  --accel auto|kvm|tcg   accelerator (default auto: KVM when usable)
  --profile lean|systemd --memory MIB --cpus N --recipe FILE --no-resume
  --kernel-image FILE --kernel-build-dir DIR [--kernel-initrd FILE]   bring your own kernel
  --reuse NAME           run on this running instance (vm:up) instead of a fresh guest
The build:
  --build auto|host|guest   where the modules are built (default auto: host when it has the kernel's gcc)
  --no-replay            always run make (default: replay kbuild's commands when only .c/.h changed)
Run:
  --dry-run              print the plan and the exact QEMU commands; run nothing
  --splat-rules FILE     extra splat patterns and allow-list over qemu/splat.json
  --cache-dir DIR --runs-dir DIR --mirror URL
  --boot-timeout S --build-timeout S --load-timeout S --app-timeout S
Exit codes: see README.md "Exit codes" (0 pass, 1 and 10-14 the code under test, 2-5 input and machine, 70 kmodvm).`;

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
    for (const line of githubAnnotations(flatChecks(r), root)) process.stdout.write(line + '\n');
    if (process.env.GITHUB_STEP_SUMMARY) await appendFile(process.env.GITHUB_STEP_SUMMARY, stepSummary(r));
  }
}

await main(async () => {
  const argv = process.argv.slice(2);
  const { config, help } = loadConfig(argv);
  if (help) {
    process.stdout.write(HELP + '\n');
    return 0;
  }
  const kernels = await kernelsFor(config, argv);
  if (kernels.length === 1) {
    const c = kernels[0] === config.kernel ? config : loadConfig([...argv, '--kernel', kernels[0]]).config;
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
    const r = await runVmTest(loadConfig([...argv, '--kernel', k]).config, { log });
    if (!config.dryRun) await publish(r, config.root);
    runs.push({ kernel: k, report: r });
  }
  if (config.dryRun) return 0;
  process.stdout.write(toTapMatrix(runs));
  const worst = worstOf(runs.map((x) => ({ name: x.kernel, ok: x.report.verdict === 'pass', failure: x.report.failure, durationMs: 0 })));
  return worst ? EXIT_CODES[worst] : 0;
});
