// Bad data files are bad input (exit 2, the file named), whatever their shape: an alias bomb or nesting
// deeper than the stack once crashed kmodvm (exit 70).
import t from 'tap';
import { z } from 'zod';
import { parseData } from '../../../scripts/lib/core/datafile.ts';

const schema = z.object({ tests: z.unknown() }).strict();

t.test('a YAML alias bomb is a usage error naming the file', async (t) => {
  const bomb = [
    'a: &a ["x","x","x","x","x","x","x","x","x"]',
    ...'bcdefghi'.split('').map((k, i) => `${k}: &${k} [${Array(9).fill(`*${'abcdefgh'[i]}`).join(',')}]`),
    'tests: *i',
    '',
  ].join('\n');
  t.throws(() => parseData(bomb, 'kmodvm.yaml', schema, 'fix it'), { failure: 'usage', message: /^kmodvm\.yaml: not valid YAML: .*alias/i });
});

t.test('nesting deeper than the stack is a usage error naming the file', async (t) => {
  const deep = `tests: ${'['.repeat(200_000)}${']'.repeat(200_000)}\n`;
  t.throws(() => parseData(deep, 'kmodvm.yaml', schema, 'fix it'), { failure: 'usage', message: /^kmodvm\.yaml(:\d+)?: not valid YAML/ });
});
