// junit.xml: a testcase per check, each suite test folded into one.
import { type CheckResult, type RunReport, testAsCheck } from './model.ts';

const xml = (s: string): string =>
  s
    .replace(/[<>&"']/g, (ch) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;', "'": '&apos;' })[ch]!)
    // XML 1.0's Char: tab, newline, return, U+0020-U+D7FF, U+E000-U+FFFD and the planes above; so no other
    // control character, no U+FFFE or U+FFFF, and no lone surrogate (the u flag matches one as a code point).
    .replace(/[^\t\n\r\u0020-\uD7FF\uE000-\uFFFD\u{10000}-\u{10FFFF}]/gu, '');

/** The run's checks, each test folded into one and followed by its unit tests' own results (KUnit cases), named under it. */
function junitCases(r: Pick<RunReport, 'checks' | 'tests' | 'testsAt'>): CheckResult[] {
  const at = r.testsAt ?? r.checks.length;
  const tests = (r.tests ?? []).flatMap((t) => [testAsCheck(t), ...t.checks.filter((c) => c.unit).map((c) => ({ ...c, name: `${t.name}: ${c.name}` }))]);
  return [...r.checks.slice(0, at), ...tests, ...r.checks.slice(at)];
}

export function toJUnit(r: RunReport, suite = 'vm:test'): string {
  const all = junitCases(r);
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
