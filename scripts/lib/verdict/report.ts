// Reports: TAP on stdout (one test point per check), junit.xml and
// report.json in the run directory, and a summary for people.
import type { BootHow } from '../vm/resume.ts';
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { EXIT_CODES, type FailureClass } from '../core/errors.ts';

export interface Check {
  name: string;
  ok: boolean;
  failure?: FailureClass;
  durationMs: number;
  message?: string;
  evidence?: string;
  /** Source locations to annotate (compiler errors, the failing transcript line, a kernel report's line). */
  annotations?: { file: string; line: number; col?: number; message: string }[];
  /** A failed no-splat check: the splat's kind (its rule id in qemu/splat.json: kasan, lockdep, memcheck-leak, …). */
  splatId?: string;
}

/** One test of a suite: its own checks, and its worst failure. */
export interface TestReport {
  name: string;
  ok: boolean;
  failure?: FailureClass;
  durationMs: number;
  checks: Check[];
  captures?: Record<string, string>;
  freshGuest?: string;
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
  /** How the guest came up: booted, resumed from a snapshot, or booted and saved first (scripts/lib/vm/snapshot.ts). */
  bootHow?: BootHow;
  /** The run's own checks: boot, build, upload, setup, then (after the tests) unload, poweroff, no-splat. */
  checks: Check[];
  /** The suite's tests, each with its own checks; they come after checks[0 .. testsAt). */
  tests?: TestReport[];
  testsAt?: number;
  /** The suite file run. */
  suite?: string;
  captures?: Record<string, string>;
}

/**
 * The worst failure class of some checks. A splat outranks everything (a
 * crash also makes steps fail); then a bug of ours, the machine's failures,
 * bad input, and the module's failures from a hang down to a transcript.
 */
export const FAILURE_RANK: readonly FailureClass[] = [
  'splat',
  'internal',
  'boot',
  'upload',
  'image',
  'setup',
  'usage',
  'timeout',
  'load',
  'build',
  'app',
  'transcript',
];

/** One test's report: its checks, and its worst failure. */
export function testReport(name: string, checks: Check[], durationMs: number, freshGuest?: string): TestReport {
  const w = worstOf(checks);
  return { name, ok: !w, failure: w, durationMs, checks, freshGuest };
}

export function worstOf(checks: readonly Check[]): FailureClass | undefined {
  const bad = checks.filter((c) => !c.ok).map((c) => c.failure ?? 'internal');
  return FAILURE_RANK.find((f) => bad.includes(f));
}

/** Every check of a report: its own and its tests'. */
export const allChecks = (r: Pick<RunReport, 'checks' | 'tests'>): Check[] => [...r.checks, ...(r.tests ?? []).flatMap((t) => t.checks)];

/** The worst failure class over all checks decides (FAILURE_RANK). No failed check is a pass. */
export function verdictOf(checks: readonly Check[]): { verdict: 'pass' | 'fail'; failure?: FailureClass; exitCode: number } {
  const failure = worstOf(checks);
  if (!failure) return { verdict: 'pass', exitCode: 0 };
  return { verdict: 'fail', failure, exitCode: EXIT_CODES[failure] };
}

const yamlBlock = (text: string): string[] => ['  ---', '  evidence: |-', ...text.split('\n').map((l) => `    ${l}`), '  ...'];

const tapDesc = (name: string, message: string | undefined, ms: number): string =>
  `${name}${message ? ` - ${message.replace(/#/g, '\\#')}` : ''} (${(ms / 1000).toFixed(2)} s)`;

/** TAP 14 points for checks, indented for a subtest. */
function tapPoints(checks: readonly Check[], indent: string, from = 1): string[] {
  return checks.flatMap((c, i) =>
    [`${c.ok ? 'ok' : 'not ok'} ${from + i} ${tapDesc(c.name, c.message, c.durationMs)}`, ...(!c.ok && c.evidence ? yamlBlock(c.evidence) : [])].map(
      (l) => indent + l,
    ),
  );
}

/** TAP 14: the run's checks, and each test as a subtest with its own checks. */
export function toTap(checksOrReport: readonly Check[] | Pick<RunReport, 'checks' | 'tests' | 'testsAt'>): string {
  const r = Array.isArray(checksOrReport) ? { checks: checksOrReport as Check[] } : (checksOrReport as Pick<RunReport, 'checks' | 'tests' | 'testsAt'>);
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

const xml = (s: string): string =>
  s
    .replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!)
    // XML 1.0's Char: tab, newline, return, U+0020-U+D7FF, U+E000-U+FFFD and the planes above; so no other
    // control character, no U+FFFE or U+FFFF, and no lone surrogate (the u flag matches one as a code point).
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '');

/** A suite test as one check: failed when any of its checks failed, with their evidence. */
export function testAsCheck(t: TestReport): Check {
  const bad = t.checks.filter((c) => !c.ok);
  return {
    name: `test ${t.name}`,
    ok: t.ok,
    failure: t.failure,
    durationMs: t.durationMs,
    message: bad.length ? bad.map((c) => `${c.name}: ${c.message ?? c.failure}`).join('; ') : `${t.checks.length} checks`,
    evidence: bad.map((c) => `${c.name}: ${c.message ?? ''}${c.evidence ? `\n${c.evidence}` : ''}`).join('\n') || undefined,
    annotations: bad.flatMap((c) => c.annotations ?? []),
  };
}

/** The run's checks with each test folded into one, in order. */
export function flatChecks(r: Pick<RunReport, 'checks' | 'tests' | 'testsAt'>): Check[] {
  const at = r.testsAt ?? r.checks.length;
  return [...r.checks.slice(0, at), ...(r.tests ?? []).map(testAsCheck), ...r.checks.slice(at)];
}

export function toJUnit(r: RunReport, suite = 'vm:test'): string {
  const all = flatChecks(r);
  const failures = all.filter((c) => !c.ok).length;
  const cases = all.map((c) => {
    const open = `    <testcase classname="kmodvm.${xml(suite)}" name="${xml(c.name)}" time="${(c.durationMs / 1000).toFixed(3)}"`;
    if (c.ok) return `${open}/>`;
    return `${open}>\n      <failure type="${c.failure ?? 'internal'}" message="${xml(c.message ?? 'failed')}">${xml(c.evidence ?? '')}</failure>\n    </testcase>`;
  });
  return [
    '<?xml version="1.0" encoding="UTF-8"?>',
    `<testsuites tests="${all.length}" failures="${failures}" time="${(r.durationMs / 1000).toFixed(3)}">`,
    `  <testsuite name="${xml(suite)}" tests="${all.length}" failures="${failures}" time="${(r.durationMs / 1000).toFixed(3)}" timestamp="${r.startedAt}">`,
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
  for (const c of flatChecks(r).filter((x) => !x.ok)) {
    lines.push(`failed: ${c.name}: ${c.message ?? ''}`);
    if (c.evidence) lines.push(...c.evidence.split('\n').map((l) => `  ${l}`));
  }
  lines.push(`run directory: ${r.runDir}`);
  return lines.join('\n');
}

export async function writeReports(r: RunReport): Promise<void> {
  await writeFile(path.join(r.runDir, 'report.json'), JSON.stringify(r, null, 2) + '\n');
  await writeFile(path.join(r.runDir, 'junit.xml'), toJUnit(r));
  await writeFile(path.join(r.runDir, 'report.tap'), toTap(r));
}

const ghEscape = (s: string): string => s.replace(/%/g, '%25').replace(/\r/g, '%0D').replace(/\n/g, '%0A');
const ghProp = (s: string): string => ghEscape(s).replace(/:/g, '%3A').replace(/,/g, '%2C');

/** GitHub Actions workflow commands: one ::error per annotation, or per failed check without one. Paths relative to root. */
export function githubAnnotations(checks: readonly Check[], root: string): string[] {
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
  const icon = (c: Check): string => (c.ok ? '✅' : '❌');
  return [
    `## kmodvm: ${r.verdict === 'pass' ? '✅ PASS' : `❌ FAIL (${r.failure}, exit ${r.exitCode})`}`,
    '',
    `accel \`${r.accel}\`, kernel \`${r.kernelVersion ?? '?'}\`, ${(r.durationMs / 1000).toFixed(1)} s` +
      (r.bootToSshMs !== undefined ? `, ${bootWords(r)} ${(r.bootToSshMs / 1000).toFixed(1)} s` : ''),
    '',
    '| | check | time | note |',
    '|---|---|---|---|',
    ...flatChecks(r).map((c) => `| ${icon(c)} | ${cell(c.name)} | ${(c.durationMs / 1000).toFixed(2)} s | ${cell(c.message ?? '')} |`),
    ...flatChecks(r)
      .filter((c) => !c.ok && c.evidence)
      .flatMap((c) => ['', `### ${cell(c.name)}`, '', `${codeFence(c.evidence!)}diff`, c.evidence!, codeFence(c.evidence!)]),
    '',
  ].join('\n');
}
