// Each load step's own kernel lines (#29.15), on a real run's evidence: the
// order suite with its third module loaded too, whose init returns -EINVAL
// and prints nothing; the kernel lines of the loads before it, and the marks
// kmodvm wrote around each step, are in the same log.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { markedArgv, stepLines, withoutMarks } from '../../../scripts/lib/guest/step-marks.ts';
import type { TestEvidence, TestExpect } from '../../../scripts/lib/suite/checks/check.ts';
import { judgeTest } from '../../../scripts/lib/suite/judge-test.ts';
import { loadRules } from '../../../scripts/lib/verdict/splat.ts';

const root = new URL('../../../', import.meta.url).pathname;
const saved = JSON.parse(readFileSync(path.join(root, 'test/fixtures/step-marks/order-unused.evidence.json'), 'utf8')) as {
  evidence: TestEvidence;
  expect: TestExpect;
};
const log = saved.evidence.kernelLog;

t.test("a step's own lines are those between its marks; a later step's are not in them", async (t) => {
  t.same(
    stepLines(log, 'insmod user')?.map((l) => l.replace(/^\[[^\]]*\] /, '')),
    ['user: provider says 42'],
  );
  t.same(stepLines(log, 'insmod unused'), [], 'the failed insmod printed nothing');
  t.equal(stepLines(log, 'insmod nosuch'), undefined, 'no mark, no window');
  t.notMatch(withoutMarks(log), /kmodvm-step/);
  t.match(withoutMarks(log), /user: provider says 42/);
});

t.test("the failed insmod's evidence is its own: not the lines of the loads before it or the unloads after", async (t) => {
  const j = judgeTest(saved.evidence, saved.expect, loadRules([path.join(root, 'rules/splat.json')]));
  const failed = j.checks.find((c) => c.name === 'insmod unused');
  t.equal(failed?.ok, false);
  t.match(failed?.evidence, /Invalid parameters\nthe kernel printed nothing while insmod unused ran$/);
  t.notMatch(failed?.evidence, /provider says|kmodvm-step/);
});

t.test('a marked step is one exec: sh -c with the name as an argument, its exit status kept', async (t) => {
  const argv = markedArgv("insmod a'b", ['insmod', '/root/kmodvm/x.ko', 'p="a b"']);
  t.same(argv.slice(3), ["insmod a'b", 'insmod', '/root/kmodvm/x.ko', 'p="a b"']);
  t.match(argv[2], /"\$@"; rc=\$\?; .*exit \$rc$/);
  t.notMatch(argv[2], /a'b/, 'the name is never part of the script');
});
