import t from 'tap';
import type { CheckResult } from '../../../scripts/lib/verdict/model.ts';
import { toTap } from '../../../scripts/lib/verdict/tap.ts';

const checks: CheckResult[] = [
  { name: 'boot', ok: true, durationMs: 7080 },
  { name: 'app', ok: false, failure: 'app', durationMs: 60000, message: 'app timed out after 60 s', evidence: 'no reply <from> "kernel" & co' },
  { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: 'bug: BUG: TASK stack guard page was hit', evidence: 'BUG: ...\nCall Trace:' },
];

t.test('TAP: one point per check, evidence in a YAML block', async (t) => {
  const tap = toTap(checks);
  t.match(tap, /^TAP version 14\n1\.\.3\nok 1 boot \(7\.08 s\)\nnot ok 2 app - app timed out after 60 s \(60\.00 s\)\n  ---\n  evidence: \|-\n    no reply/);
});
