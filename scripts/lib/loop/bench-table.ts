// The benchmark's pure parts: medians, ratios, the table. The runner is
// cli/commands/bench.ts. This is a benchmark, not a test: nothing fails on a time.
export interface BenchRow {
  key: string;
  label: string;
  samples: number[];
}

export function median(xs: readonly number[]): number | null {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

const ratio = (a: number | null | undefined, b: number | null | undefined): number | null =>
  a == null || b == null || b === 0 ? null : Math.round((a / b) * 1000) / 1000;

export interface BenchResult {
  runs: number;
  accel: string;
  medians_s: Record<string, number | null>;
  samples_s: Record<string, number[]>;
  ratios: {
    boot_vs_floor: number | null;
    resume_vs_floor: number | null;
    warm_vs_classic: number | null;
    guest_build_vs_classic: number | null;
    guest_make_vs_classic: number | null;
    memcheck_vs_warm: number | null;
    sandbox_vs_plain_process: number | null;
    debug_kernel_vs_warm: number | null;
    /** #25's bar: a warm run with a hot-plugged device, over a plain warm run (target ≤ 1.5). */
    devices_vs_warm: number | null;
    /** #26's bar: one more --repeat run over a plain resume (target: a repeat ≤ 1.5 s). */
    repeat_run_vs_resume: number | null;
    cli_start_compiled_vs_tsx: number | null;
    ssh_true_compiled_vs_tsx: number | null;
  };
  notes: string[];
}

export function summarize(rows: readonly BenchRow[], runs: number, accel: string, notes: string[] = []): BenchResult {
  const medians_s = Object.fromEntries(rows.map((r) => [r.key, median(r.samples) === null ? null : Math.round(median(r.samples)! * 100) / 100]));
  return {
    runs,
    accel,
    medians_s,
    samples_s: Object.fromEntries(rows.map((r) => [r.key, r.samples.map((x) => Math.round(x * 100) / 100)])),
    ratios: {
      boot_vs_floor: ratio(medians_s.boot_to_ssh, medians_s.floor),
      // the default path to SSH once a snapshot exists (scripts/lib/vm/snapshot.ts)
      resume_vs_floor: ratio(medians_s.resume_to_ssh, medians_s.floor),
      warm_vs_classic: ratio(medians_s.warm_vm_test, medians_s.classic),
      guest_build_vs_classic: ratio(medians_s.warm_vm_test_guest_build, medians_s.classic),
      // the first guest build of a module shape: make, no record to replay yet
      guest_make_vs_classic: ratio(medians_s.guest_build_make, medians_s.classic),
      memcheck_vs_warm: ratio(medians_s.warm_vm_test_memcheck, medians_s.warm_vm_test),
      sandbox_vs_plain_process: ratio(medians_s.sandbox_20, medians_s.plain_20),
      debug_kernel_vs_warm: ratio(medians_s.warm_vm_test_debug, medians_s.warm_vm_test),
      devices_vs_warm: ratio(medians_s.warm_vm_test_edu, medians_s.warm_vm_test),
      repeat_run_vs_resume: ratio(medians_s.repeat_per_run, medians_s.resume_to_ssh),
      cli_start_compiled_vs_tsx: ratio(medians_s.cli_start, medians_s.cli_start_tsx),
      ssh_true_compiled_vs_tsx: ratio(medians_s.ssh_true, medians_s.ssh_true_tsx),
    },
    notes,
  };
}

export function markdownTable(rows: readonly BenchRow[], r: BenchResult): string {
  const fmt = (x: number | null | undefined): string => (x == null ? 'n/a' : `${x.toFixed(2)} s`);
  return [
    `| what | median (${r.runs} runs, ${r.accel}) | samples |`,
    '|---|---|---|',
    ...rows.map((row) => `| ${row.label} | ${fmt(r.medians_s[row.key])} | ${row.samples.map((x) => x.toFixed(2)).join(', ') || 'not measured'} |`),
    `| **boot / floor** | ${r.ratios.boot_vs_floor ?? 'n/a'} | |`,
    `| **resume / floor** | ${r.ratios.resume_vs_floor ?? 'n/a'} | |`,
    `| **warm / classic** | ${r.ratios.warm_vs_classic ?? 'n/a'} | |`,
    `| **guest build / classic** | ${r.ratios.guest_build_vs_classic ?? 'n/a'} | |`,
    `| guest build with make (first build of a module shape) / classic | ${r.ratios.guest_make_vs_classic ?? 'n/a'} | |`,
    `| \`--memcheck\` / warm | ${r.ratios.memcheck_vs_warm ?? 'n/a'} | |`,
    `| debug kernel / warm | ${r.ratios.debug_kernel_vs_warm ?? 'n/a'} | |`,
    `| resume + a hot-plugged device (edu) / warm | ${r.ratios.devices_vs_warm ?? 'n/a'} | |`,
    `| one more --repeat run / resume | ${r.ratios.repeat_run_vs_resume ?? 'n/a'} | |`,
    `| a sandboxed process / a plain one | ${r.ratios.sandbox_vs_plain_process ?? 'n/a'} | |`,
    `| CLI start, compiled / tsx | ${r.ratios.cli_start_compiled_vs_tsx ?? 'n/a'} | |`,
    `| \`kmodvm ssh -- true\`, compiled / tsx | ${r.ratios.ssh_true_compiled_vs_tsx ?? 'n/a'} | |`,
  ].join('\n');
}
