// The kernel's taint flags: a test may add O (out of tree) and E (unsigned)
// and nothing else. A new flag fails the test and leaves the kernel untrusted.
import { unexpectedTaint } from '../../verdict/taint-flags.ts';
import type { CheckRoom } from './check.ts';

export const taint: CheckRoom = {
  id: 'taint',
  about: 'no new taint flag but O (out of tree) and E (unsigned) over the test',
  wanted: () => true,
  create: () => ({
    id: 'taint',
    judge: (e, ctx) => {
      if (e.taintBefore === undefined || e.taintAfter === undefined) return undefined;
      // KUnit taints the kernel N (TAINT_TEST) when it runs a suite: expected in the kunit: test.
      const extra = unexpectedTaint(e.taintBefore, e.taintAfter, ctx.expect.kunit ? ['O', 'E', 'N'] : undefined);
      if (!extra.length) return { results: [{ name: 'taint', ok: true, durationMs: 0, message: `tainted ${e.taintAfter}` }] };
      const message = `new taint flags ${extra.join('')}`;
      return {
        untrusted: message,
        results: [{ name: 'taint', ok: false, failure: 'splat', durationMs: 0, message, evidence: `tainted ${e.taintBefore} -> ${e.taintAfter}` }],
      };
    },
  }),
};
