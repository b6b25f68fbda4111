// KUnit (#27.2): the suites a kunit: dir's modules run when they load, read
// from the test's kernel log (verdict/ktap.ts). Each case is a result of its
// own, so a TAP point and a JUnit case; a failed one says its expectation
// and annotates its file:line. Only the test kmodvm adds for a kunit: dir
// (its expect.kunit) is judged here; KUnit taints the kernel N (TAINT_TEST),
// which the taint check allows in that test.
import { GUEST_WORK } from '../../guest/steps.ts';
import { type KunitCase, missingCases, parseKtap } from '../../verdict/ktap.ts';
import type { CheckResult } from '../../verdict/model.ts';
import type { CheckRoom, Judgement, TestEvidence } from './check.ts';

/** A path as the module's build wrote it (the host's build tree, or the guest's upload), relative to the suite root. */
export function suiteRelative(file: string): string {
  const tree = /\/host-builds\/[0-9a-f]{16}\/tree\/(.*)$/.exec(file);
  if (tree) return tree[1];
  return file.startsWith(`${GUEST_WORK}/`) ? file.slice(GUEST_WORK.length + 1) : file;
}

/** Text whose paths are the build's, with the suite's instead. */
export const suiteRelativeText = (text: string): string =>
  text
    .replace(/\/\S*?\/host-builds\/[0-9a-f]{16}\/tree\//g, '')
    .split(`${GUEST_WORK}/`)
    .join('');

const caseResult = (c: KunitCase): CheckResult => {
  const name = `kunit ${c.suite}.${c.name}`;
  if (c.ok) return { name, ok: true, unit: true, durationMs: 0, message: c.skipped ? `skipped: ${c.skipped}` : 'passed' };
  const at = c.at && { file: suiteRelative(c.at.file), line: c.at.line };
  const first = c.message.find((m) => /FAILED at/.test(m)) ?? c.message[0] ?? 'failed';
  return {
    name,
    ok: false,
    unit: true,
    failure: 'kunit',
    durationMs: 0,
    message: suiteRelativeText(first),
    evidence: suiteRelativeText(c.message.join('\n')) || 'the case printed no message',
    annotations: at ? [{ ...at, message: `KUnit ${c.suite}.${c.name}: ${suiteRelativeText(c.message.join(' ')).slice(0, 300)}` }] : undefined,
  };
};

export function kunitJudgement(e: Pick<TestEvidence, 'kernelLog' | 'loads'>, dir: string): Judgement {
  const suites = parseKtap(e.kernelLog);
  if (!suites.length) {
    // A module that did not load ran nothing: its load step already says why.
    if (e.loads.some((l) => !l.ok)) return { results: [] };
    return {
      results: [
        {
          name: 'kunit',
          ok: false,
          failure: 'usage',
          durationMs: 0,
          message: `kunit: ${dir}: its modules loaded and ran no KUnit suite`,
          evidence: 'a module holds KUnit suites when it registers them with kunit_test_suite(); the kernel runs them as it loads the module',
        },
      ],
    };
  }
  const results = suites.flatMap((s) => {
    const cut = missingCases(s);
    const missing: CheckResult[] = cut
      ? [
          {
            name: `kunit ${s.name}`,
            ok: false,
            unit: true,
            failure: 'kunit',
            durationMs: 0,
            message: `suite ${s.name} planned ${s.planned} cases and reported ${s.cases.length}: it stopped mid-suite`,
          },
        ]
      : [];
    return [...s.cases.map(caseResult), ...missing];
  });
  return { results };
}

export const kunit: CheckRoom = {
  id: 'kunit',
  about: "the KUnit suites of the suite's kunit: dirs, a result per case, in the test kmodvm adds for each dir",
  wanted: (choice) => Boolean(choice.kunit),
  create: () => ({
    id: 'kunit',
    after: 'run',
    judge: (e, ctx) => (ctx.expect.kunit ? kunitJudgement(e, ctx.expect.kunit) : undefined),
  }),
};
