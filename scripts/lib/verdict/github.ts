// GitHub Actions: ::error workflow commands with file and line, and the
// Markdown step summary.
import { bootWords, type CheckResult, flatChecks, type RunReport } from './model.ts';

const ghEscape = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const ghProp = (s: string): string => ghEscape(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** GitHub Actions workflow commands: one ::error per annotation, or per failed check without one. Paths relative to root. */
export function githubAnnotations(checks: readonly CheckResult[], root: string): string[] {
  const rel = (f: string): string => (f.startsWith(`${root}/`) ? f.slice(root.length + 1) : f);
  return checks
    .filter((c) => !c.ok)
    .flatMap((c) =>
      c.annotations?.length
        ? c.annotations.map(
            (a) =>
              `::error file=${ghProp(rel(a.file))},line=${a.line}${a.col ? `,col=${a.col}` : ''},title=${ghProp(`kmodvm ${c.name}`)}::${ghEscape(a.message)}`,
          )
        : [`::error title=${ghProp(`kmodvm ${c.name}`)}::${ghEscape(`${c.message ?? 'failed'}${c.evidence ? `\n${c.evidence}` : ''}`)}`],
    );
}

/** A table cell or heading of guest text: one line, no column break. */
const cell = (s: string): string => s.replace(/\r?\n/g, ' ').replace(/\|/g, '\\|');

/** A code fence longer than any run of backticks in text, so guest output cannot close it and go on as Markdown. */
export function codeFence(text: string): string {
  let longest = 0;
  for (const m of text.matchAll(/`+/g)) longest = Math.max(longest, m[0].length);
  return '`'.repeat(Math.max(3, longest + 1));
}

/** Markdown for $GITHUB_STEP_SUMMARY: the verdict, a table of checks, the evidence of failures. */
export function stepSummary(r: RunReport): string {
  const icon = (c: CheckResult): string => (c.ok ? '✅' : '❌');
  return [
    `## kmodvm: ${r.verdict === 'pass' ? '✅ PASS' : `❌ FAIL (${r.failure}, exit ${r.exitCode})`}`,
    '',
    `accel \`${r.accel}\`, kernel \`${r.kernelVersion ?? '?'}\`, ${(r.durationMs / 1000).toFixed(1)} s` +
      (r.bootToSshMs !== undefined ? `, ${bootWords(r)} ${(r.bootToSshMs / 1000).toFixed(1)} s` : ''),
    '',
    '| | check | time | note |',
    '|---|---|---|---|',
    ...flatChecks(r).map((c) => `| ${icon(c)} | ${cell(c.name)} | ${(c.durationMs / 1000).toFixed(2)} s | ${cell(c.message ?? '')} |`),
    ...(r.passRates
      ? [
          '',
          `### pass rates${r.seed === undefined ? '' : ` (shuffled, seed ${r.seed})`}`,
          '',
          '| | test | passed | rate |',
          '|---|---|---|---|',
          ...r.passRates.map(
            (p) =>
              `| ${p.flaky ? '⚠️ flaky' : p.passed === p.runs ? '✅' : '❌'} | ${cell(p.name)} | ${p.passed} of ${p.runs} | ${Math.round((100 * p.passed) / p.runs)} % |`,
          ),
        ]
      : []),
    ...flatChecks(r)
      .filter((c) => !c.ok && c.evidence)
      .flatMap((c) => ['', `### ${cell(c.name)}`, '', `${codeFence(c.evidence!)}diff`, c.evidence!, codeFence(c.evidence!)]),
    '',
  ].join('\n');
}
