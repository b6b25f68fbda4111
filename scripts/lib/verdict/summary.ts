// The summary for people, printed after a run.
import { bootWords, flatChecks, type RunReport } from './model.ts';

export function summary(r: RunReport): string {
  const lines = [
    `verdict: ${r.verdict.toUpperCase()}${r.failure ? ` (${r.failure}, exit ${r.exitCode})` : ''} in ${(r.durationMs / 1000).toFixed(1)} s` +
      (r.bootToSshMs !== undefined ? `, ${bootWords(r)} ${(r.bootToSshMs / 1000).toFixed(1)} s` : '') +
      `, accel ${r.accel}`,
  ];
  if (r.tests?.length)
    lines.push(
      `tests: ${r.tests.filter((t) => t.ok).length} of ${r.tests.length} passed${
        r.tests.some((t) => !t.ok)
          ? ` (failed: ${r.tests
              .filter((t) => !t.ok)
              .map((t) => t.name)
              .join(', ')})`
          : ''
      }`,
    );
  if (r.passRates)
    lines.push(
      `pass rates: ${r.passRates.map((p) => `${p.name} ${p.passed}/${p.runs}${p.flaky ? ' (flaky)' : ''}`).join(', ')}${r.seed === undefined ? '' : `; seed ${r.seed}`}`,
    );
  for (const c of flatChecks(r).filter((x) => !x.ok)) {
    lines.push(`failed: ${c.name}: ${c.message ?? ''}`);
    if (c.evidence) lines.push(...c.evidence.split('\n').map((l) => `  ${l}`));
  }
  lines.push(`run directory: ${r.runDir}`);
  return lines.join('\n');
}
