import t from 'tap';
import { taintLetters, unexpectedTaint } from '../../../scripts/lib/verdict/taint-flags.ts';

t.test('taint: O and E are expected, anything new is named by letter', async (t) => {
  t.same(taintLetters(12288), ['O', 'E']);
  t.same(unexpectedTaint(0, 12288), []);
  t.same(unexpectedTaint(0, 12288 | (1 << 9) | (1 << 7)), ['D', 'W']);
  t.same(unexpectedTaint(1 << 9, 1 << 9), [], 'a flag already set before is not new');
});
