import t from 'tap';
import { type CheckResult, verdictOf } from '../../../scripts/lib/verdict/model.ts';

const checks: CheckResult[] = [
  { name: 'boot', ok: true, durationMs: 7080 },
  { name: 'app', ok: false, failure: 'app', durationMs: 60000, message: 'app timed out after 60 s', evidence: 'no reply <from> "kernel" & co' },
  { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: 'bug: BUG: TASK stack guard page was hit', evidence: 'BUG: ...\nCall Trace:' },
];

t.test('a splat outranks the step it broke; otherwise the first failure decides; none is a pass', async (t) => {
  t.same(verdictOf(checks), { verdict: 'fail', failure: 'splat', exitCode: 13 });
  t.same(verdictOf(checks.slice(0, 2)), { verdict: 'fail', failure: 'app', exitCode: 12 });
  t.same(verdictOf(checks.slice(0, 1)), { verdict: 'pass', exitCode: 0 });
});

t.test('FAILURE_RANK names every class once', async (t) => {
  const { FAILURE_RANK } = await import('../../../scripts/lib/verdict/model.ts');
  const { EXIT_CODES } = await import('../../../scripts/lib/core/errors.ts');
  t.same([...FAILURE_RANK].sort(), Object.keys(EXIT_CODES).sort());
});
