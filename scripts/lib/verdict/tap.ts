// TAP 14 on stdout: one test point per check, each suite test a subtest.
import type { CheckResult, RunReport } from './model.ts';

const yamlBlock = (text: string): string[] => ['  ---', '  evidence: |-', ...text.split('\n').map((l) => `    ${l}`), '  ...'];

const tapDesc = (name: string, message: string | undefined, ms: number): string =>
  `${name}${message ? ` - ${message.replace(/#/g, '\\#')}` : ''} (${(ms / 1000).toFixed(2)} s)`;

/** TAP 14 points for checks, indented for a subtest. */
function tapPoints(checks: readonly CheckResult[], indent: string, from = 1): string[] {
  return checks.flatMap((c, i) =>
    [`${c.ok ? 'ok' : 'not ok'} ${from + i} ${tapDesc(c.name, c.message, c.durationMs)}`, ...(!c.ok && c.evidence ? yamlBlock(c.evidence) : [])].map(
      (l) => indent + l,
    ),
  );
}

/** TAP 14: the run's checks, and each test as a subtest with its own checks. */
export function toTap(checksOrReport: readonly CheckResult[] | Pick<RunReport, 'checks' | 'tests' | 'testsAt'>): string {
  const r = Array.isArray(checksOrReport) ? { checks: checksOrReport as CheckResult[] } : (checksOrReport as Pick<RunReport, 'checks' | 'tests' | 'testsAt'>);
  const tests = r.tests ?? [];
  const at = r.testsAt ?? r.checks.length;
  const out = ['TAP version 14', `1..${r.checks.length + tests.length}`, ...tapPoints(r.checks.slice(0, at), '')];
  tests.forEach((t, k) => {
    out.push(`# Subtest: ${t.name}`, `    1..${t.checks.length}`, ...tapPoints(t.checks, '    '));
    const why = t.ok ? undefined : `${t.failure}${t.freshGuest ? `; on a fresh guest (${t.freshGuest})` : ''}`;
    out.push(
      `${t.ok ? 'ok' : 'not ok'} ${at + k + 1} ${tapDesc(`test ${t.name}`, why ?? (t.freshGuest ? `on a fresh guest (${t.freshGuest})` : undefined), t.durationMs)}`,
    );
  });
  out.push(...tapPoints(r.checks.slice(at), '', at + tests.length + 1));
  return out.join('\n') + '\n';
}

/** Several runs (a suite's kernels:) as one TAP stream: each run a subtest. */
export function toTapMatrix(runs: readonly { kernel: string; report: RunReport }[]): string {
  const out = ['TAP version 14', `1..${runs.length}`];
  runs.forEach(({ kernel, report }, i) => {
    out.push(
      `# Subtest: kernel ${kernel}`,
      ...toTap(report)
        .trimEnd()
        .split('\n')
        .slice(1)
        .map((l) => `    ${l}`),
    );
    out.push(`${report.verdict === 'pass' ? 'ok' : 'not ok'} ${i + 1} ${tapDesc(`kernel ${kernel}`, report.failure, report.durationMs)}`);
  });
  return out.join('\n') + '\n';
}
