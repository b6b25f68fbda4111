import t from 'tap';
import { githubAnnotations, stepSummary } from '../../../scripts/lib/verdict/github.ts';
import { type CheckResult, type RunReport, verdictOf } from '../../../scripts/lib/verdict/model.ts';

const checks: CheckResult[] = [
  { name: 'boot', ok: true, durationMs: 7080 },
  { name: 'app', ok: false, failure: 'app', durationMs: 60000, message: 'app timed out after 60 s', evidence: 'no reply <from> "kernel" & co' },
  { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: 'bug: BUG: TASK stack guard page was hit', evidence: 'BUG: ...\nCall Trace:' },
];

t.test("the step summary's code fence is longer than any backtick run in the evidence, and guest text stays in its table cell (#24 Low 11)", async (t) => {
  const { codeFence } = await import('../../../scripts/lib/verdict/github.ts');
  t.equal(codeFence('plain'), '```');
  t.equal(codeFence('a ``` b ````` c'), '``````');
  const evidence = '```\n# Injected heading\n[click](https://example.invalid)';
  const checks: CheckResult[] = [{ name: 'run', ok: false, failure: 'app', durationMs: 1, message: 'line one\n| col | break', evidence }];
  const r: RunReport = { ...verdictOf(checks), runDir: '/r', accel: 'tcg', startedAt: 'x', durationMs: 1, checks };
  const md = stepSummary(r);
  t.match(md, /\n````diff\n```\n# Injected heading\n\[click\]\(https:\/\/example\.invalid\)\n````\n/, 'the evidence stays inside a longer fence');
  t.match(md, /\| run \| 0\.00 s \| line one \\\| col \\\| break \|/, 'one table row');
});

t.test('GitHub annotations: file and line for compiler errors, escaped; a plain error otherwise', async (t) => {
  const c: CheckResult[] = [
    {
      name: 'build-module',
      ok: false,
      failure: 'build',
      durationMs: 1,
      message: 'make exited 2',
      annotations: [{ file: '/repo/kernel-module/a.c', line: 168, col: 9, message: "error: 'nlsok' undeclared, 100%" }],
    },
    { name: 'app', ok: false, failure: 'app', durationMs: 1, message: 'app exited 1', evidence: 'line1\nline2' },
    { name: 'boot', ok: true, durationMs: 1 },
  ];
  t.same(githubAnnotations(c, '/repo'), [
    "::error file=kernel-module/a.c,line=168,col=9,title=kmodvm build-module::error: 'nlsok' undeclared, 100%25",
    '::error title=kmodvm app::app exited 1%0Aline1%0Aline2',
  ]);
});

t.test('the step summary holds the verdict, a row per check and the evidence', async (t) => {
  const r: RunReport = { ...verdictOf(checks), runDir: '/r', accel: 'tcg', kernelVersion: '6.1.0-56-amd64', startedAt: 'x', durationMs: 1000, checks };
  const md = stepSummary(r);
  t.match(md, /^## kmodvm: ❌ FAIL \(splat, exit 13\)/);
  t.match(md, /\| ✅ \| boot \| 7\.08 s \|/);
  t.match(md, /### no-splat\n\n```diff\nBUG: \.\.\.\nCall Trace:\n```/);
});
