// Reports: TAP on stdout (one test point per check), junit.xml and
// report.json in the run directory, and a summary for people.
import type { BootHow } from './resume.ts';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXIT_CODES, type FailureClass } from './errors.ts';

export interface Check {
  name: string;
  ok: boolean;
  failure?: FailureClass;
  durationMs: number;
  message?: string;
  evidence?: string;
  /** Source locations to annotate (compiler errors, the failing transcript line). */
  annotations?: { file: string; line: number; col?: number; message: string }[];
}

export interface RunReport {
  verdict: 'pass' | 'fail';
  failure?: FailureClass;
  exitCode: number;
  runDir: string;
  accel: string;
  kernelVersion?: string;
  imageKey?: string;
  qemuVersion?: string;
  startedAt: string;
  durationMs: number;
  bootToSshMs?: number;
  /** How the guest came up: booted, resumed from a snapshot, or booted and saved first (scripts/lib/snapshot.ts). */
  bootHow?: BootHow;
  checks: Check[];
  captures?: Record<string, string>;
}

/** A splat outranks everything (a crash also makes steps fail); otherwise the first failed check decides. No failed check is a pass. */
export function verdictOf(checks: readonly Check[]): { verdict: 'pass' | 'fail'; failure?: FailureClass; exitCode: number } {
  const bad = checks.find((c) => !c.ok && c.failure === 'splat') ?? checks.find((c) => !c.ok);
  if (!bad) return { verdict: 'pass', exitCode: 0 };
  const failure = bad.failure ?? 'internal';
  return { verdict: 'fail', failure, exitCode: EXIT_CODES[failure] };
}

const yamlBlock = (text: string): string[] => ['  ---', '  evidence: |-', ...text.split('\n').map((l) => `    ${l}`), '  ...'];

export function toTap(checks: readonly Check[]): string {
  const out = ['TAP version 14', `1..${checks.length}`];
  checks.forEach((c, i) => {
    const desc = `${c.name}${c.message ? ` - ${c.message.replace(/#/g, '\\#')}` : ''} (${(c.durationMs / 1000).toFixed(2)} s)`;
    out.push(`${c.ok ? 'ok' : 'not ok'} ${i + 1} ${desc}`);
    if (!c.ok && c.evidence) out.push(...yamlBlock(c.evidence));
  });
  return out.join('\n') + '\n';
}

const xml = (s: string): string => s.replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!)
  // XML 1.0 forbids most control characters.
  .replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f]/g, '');

export function toJUnit(r: RunReport, suite = 'vm:test'): string {
  const failures = r.checks.filter((c) => !c.ok).length;
  const cases = r.checks.map((c) => {
    const open = `    <testcase classname="kmodvm.${xml(suite)}" name="${xml(c.name)}" time="${(c.durationMs / 1000).toFixed(3)}"`;
    if (c.ok) return `${open}/>`;
    return `${open}>\n      <failure type="${c.failure ?? 'internal'}" message="${xml(c.message ?? 'failed')}">${xml(c.evidence ?? '')}</failure>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${r.checks.length}" failures="${failures}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="${xml(suite)}" tests="${r.checks.length}" failures="${failures}" time="${(r.durationMs / 1000).toFixed(3)}" timestamp="${r.startedAt}">`,
    ...cases,
    '  </testsuite>',
    '</testsuites>',
    '',
  ].join('\n');
}

/** "boot to SSH", or how else the guest got there. */
export function bootWords(r: Pick<RunReport, 'bootHow'>): string {
  return r.bootHow === 'resumed' ? 'resume to SSH' : r.bootHow === 'saved, then resumed' ? 'boot, save and resume to SSH' : 'boot to SSH';
}

export function summary(r: RunReport): string {
  const lines = [
    `verdict: ${r.verdict.toUpperCase()}${r.failure ? ` (${r.failure}, exit ${r.exitCode})` : ''} in ${(r.durationMs / 1000).toFixed(1)} s` +
      (r.bootToSshMs !== undefined ? `, ${bootWords(r)} ${(r.bootToSshMs / 1000).toFixed(1)} s` : '') + `, accel ${r.accel}`,
  ];
  for (const c of r.checks.filter((x) => !x.ok)) {
    lines.push(`failed: ${c.name}: ${c.message ?? ''}`);
    if (c.evidence) lines.push(...c.evidence.split('\n').map((l) => `  ${l}`));
  }
  lines.push(`run directory: ${r.runDir}`);
  return lines.join('\n');
}

export async function writeReports(r: RunReport): Promise<void> {
  await writeFile(path.join(r.runDir, 'report.json'), JSON.stringify(r, null, 2) + '\n');
  await writeFile(path.join(r.runDir, 'junit.xml'), toJUnit(r));
  await writeFile(path.join(r.runDir, 'report.tap'), toTap(r.checks));
}

const ghEscape = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const ghProp = (s: string): string => ghEscape(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** GitHub Actions workflow commands: one ::error per annotation, or per failed check without one. Paths relative to root. */
export function githubAnnotations(checks: readonly Check[], root: string): string[] {
  const rel = (f: string): string => (f.startsWith(`${root}/`) ? f.slice(root.length + 1) : f);
  return checks.filter((c) => !c.ok).flatMap((c) => (c.annotations?.length
    ? c.annotations.map((a) => `::error file=${ghProp(rel(a.file))},line=${a.line}${a.col ? `,col=${a.col}` : ''},title=${ghProp(`kmodvm ${c.name}`)}::${ghEscape(a.message)}`)
    : [`::error title=${ghProp(`kmodvm ${c.name}`)}::${ghEscape(`${c.message ?? 'failed'}${c.evidence ? `\n${c.evidence}` : ''}`)}`]));
}

/** Markdown for $GITHUB_STEP_SUMMARY: the verdict, a table of checks, the evidence of failures. */
export function stepSummary(r: RunReport): string {
  const icon = (c: Check): string => (c.ok ? '✅' : '❌');
  return [
    `## kmodvm: ${r.verdict === 'pass' ? '✅ PASS' : `❌ FAIL (${r.failure}, exit ${r.exitCode})`}`,
    '',
    `accel \`${r.accel}\`, kernel \`${r.kernelVersion ?? '?'}\`, ${(r.durationMs / 1000).toFixed(1)} s` + (r.bootToSshMs !== undefined ? `, ${bootWords(r)} ${(r.bootToSshMs / 1000).toFixed(1)} s` : ''),
    '',
    '| | check | time | note |',
    '|---|---|---|---|',
    ...r.checks.map((c) => `| ${icon(c)} | ${c.name} | ${(c.durationMs / 1000).toFixed(2)} s | ${(c.message ?? '').replace(/\|/g, '\\|')} |`),
    ...r.checks.filter((c) => !c.ok && c.evidence).flatMap((c) => ['', `### ${c.name}`, '', '```diff', c.evidence!, '```']),
    '',
  ].join('\n');
}
