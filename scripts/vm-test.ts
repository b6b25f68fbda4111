// npm run vm:test: from a fresh clone to a verdict. See README.md.
import { loadConfig } from './lib/config.ts';
import { log, main } from './lib/cli.ts';
import { appendFile } from 'node:fs/promises';
import { flatChecks, githubAnnotations, stepSummary, summary, toTap, writeReports } from './lib/report.ts';
import { runVmTest } from './lib/vm-test-run.ts';

const HELP = `usage: npm run vm:test -- [options]
  --accel auto|kvm|tcg   accelerator (default auto: KVM when usable)
  --dry-run              print the plan and the exact QEMU command; run nothing
  --cache-dir DIR        image cache (default $KMODVM_CACHE_DIR or ~/.cache/kmodvm)
  --runs-dir DIR         where run directories go (default ./runs)
  --mirror URL           Debian mirror for the image build (default: mmdebstrap's)
  --module-dir DIR --app-dir DIR --transcript FILE --recipe FILE
  --no-replay            always run make (default: replay kbuild's recorded commands when only .c/.h changed)
  --no-resume            always boot the guest (default: resume it from the snapshot taken after its first boot)
  --build auto|host|guest --kernel NAME --profile lean|systemd --reuse NAME
  --memory MIB --cpus N --boot-timeout S --build-timeout S --load-timeout S --app-timeout S
Exit codes: see README.md "Exit codes".`;

await main(async () => {
  const { config, help } = loadConfig(process.argv.slice(2));
  if (help) { process.stdout.write(HELP + '\n'); return 0; }
  const r = await runVmTest(config, { log });
  if (config.dryRun) return 0;
  await writeReports(r);
  process.stdout.write(toTap(r));
  log(summary(r));
  if (process.env.GITHUB_ACTIONS === 'true') {
    for (const line of githubAnnotations(flatChecks(r), config.root)) process.stdout.write(line + '\n');
    if (process.env.GITHUB_STEP_SUMMARY) await appendFile(process.env.GITHUB_STEP_SUMMARY, stepSummary(r));
  }
  return r.exitCode;
});
