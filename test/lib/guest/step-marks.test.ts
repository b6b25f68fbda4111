// Each load step's own kernel lines (#29.15), on a real run's evidence: the
// order suite with its third module loaded too, whose init returns -EINVAL
// and prints nothing; the kernel lines of the loads before it, and the marks
// kmodvm wrote around each step, are in the same log.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { markedLine, stepLines, withoutMarks } from '../../../scripts/lib/guest/step-marks.ts';
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
  const forged = '[    7.70] BUG: unable to handle page fault; kmodvm-step: insmod unused';
  t.match(withoutMarks(`${log}\n${forged}`), /BUG: unable to handle page fault/, 'a line that only contains the words is not taken out of the checks');
  t.match(withoutMarks(log), /user: provider says 42/);
});

t.test("the failed insmod's evidence is its own: not the lines of the loads before it or the unloads after", async (t) => {
  const j = judgeTest(saved.evidence, saved.expect, loadRules([path.join(root, 'rules/splat.json')]));
  const failed = j.checks.find((c) => c.name === 'insmod unused');
  t.equal(failed?.ok, false);
  t.match(failed?.evidence, /Invalid parameters\nthe kernel printed nothing while insmod unused ran$/);
  t.notMatch(failed?.evidence, /provider says|kmodvm-step/);
});

t.test('a marked step is one line for a kept shell, every word quoted, its exit status kept', async (t) => {
  const line = markedLine("insmod a'b", ['insmod', '/root/kmodvm/x.ko', 'p="a b"']);
  t.equal(
    line,
    `echo 'kmodvm-step: insmod a'\\''b' >/dev/kmsg 2>/dev/null; insmod /root/kmodvm/x.ko 'p="a b"'; rc=$?; echo 'kmodvm-step-end: insmod a'\\''b' >/dev/kmsg 2>/dev/null; exit $rc`,
  );
  const sh = await execa('sh', ['-c', line.replace(/>\/dev\/kmsg 2>\/dev\/null/g, '>&2').replace('insmod /root/kmodvm/x.ko', "printf '%s'")], {
    reject: false,
  });
  t.equal(sh.stdout, 'p="a b"', 'the argument arrives as one word');
  t.equal(sh.stderr, "kmodvm-step: insmod a'b\nkmodvm-step-end: insmod a'b", 'the marks, with the name as written');
  const fails = await execa('sh', ['-c', markedLine('x', ['false']).replace(/\/dev\/kmsg/g, '/dev/null')], { reject: false });
  t.equal(fails.exitCode, 1, "the command's exit status");
});
