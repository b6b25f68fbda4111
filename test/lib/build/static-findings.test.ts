// The static checks' findings (#27.3), on real output: a W=1 C=2
// CHECK=sparse kbuild of test/e2e/fixtures/static-suite's module against
// Debian's 6.1.0-57 headers (sparse 0.6.4), and checkpatch.pl of Debian's
// linux-source 6.1.192 on its source.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { buildFindings, checkpatchFindings, findingLine, findingsSummary } from '../../../scripts/lib/build/static-findings.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/static/${f}`, import.meta.url), 'utf8');

t.test("gcc's W=1 warning and sparse's, each with its tool, file and line; sparse's detail lines join its finding", async (t) => {
  const fs = buildFindings(fx('lint_me-w1-sparse-6.1.log'));
  t.same(fs.map(findingLine), [
    '/tmp/sp2/lint_me.c:13:5: W=1 warning: no previous prototype for ‘lint_me_count’ [-Wmissing-prototypes]',
    "/tmp/sp2/lint_me.c:13:5: sparse warning: symbol 'lint_me_count' was not declared. Should it be static?",
    '/tmp/sp2/lint_me.c:20:18: sparse warning: incorrect type in initializer (different address spaces); expected int *p; got void [noderef] __user *ubuf',
  ]);
});

t.test("checkpatch's error at its line; its total line is not a finding", async (t) => {
  const fs = checkpatchFindings(fx('lint_me-checkpatch-6.1.192.txt'));
  t.same(fs, [{ tool: 'checkpatch', file: 'lint/lint_me.c', line: 27, severity: 'error', message: "space required before the open parenthesis '('" }]);
  t.equal(findingsSummary([...buildFindings(fx('lint_me-w1-sparse-6.1.log')), ...fs]), '4 findings: W=1 1, sparse 2, checkpatch 1');
  t.equal(findingsSummary([]), 'no findings (W=1, sparse, checkpatch)');
});

t.test("the tool of each finding when stdout and stderr come apart (kbuild's CHECK line on stdout, the diagnostics on stderr)", async (t) => {
  const log = fx('lint_me-w1-sparse-6.1.log');
  const apart = [
    ...log.split('\n').filter((l) => !/: (warning|error):|: {4}/.test(l)),
    ...log.split('\n').filter((l) => /: (warning|error):|: {4}/.test(l)),
  ].join('\n');
  t.same(
    buildFindings(apart).map((f) => f.tool),
    ['W=1', 'sparse', 'sparse'],
  );
});
