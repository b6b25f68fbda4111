import t from 'tap';
import { EXIT_CODES, exitCodeOf, formatError, KmodvmError, VM_FAILURES } from '../../../scripts/lib/core/errors.ts';

t.test('every failure class has its own exit code, and a VM failure differs from a test failure', async (t) => {
  const codes = Object.values(EXIT_CODES);
  t.equal(new Set(codes).size, codes.length);
  t.same(EXIT_CODES, {
    transcript: 1,
    usage: 2,
    setup: 3,
    image: 4,
    boot: 5,
    upload: 6,
    build: 10,
    load: 11,
    app: 12,
    splat: 13,
    timeout: 14,
    'suite-setup': 15,
    static: 16,
    kunit: 17,
    coverage: 18,
    internal: 70,
  });
  for (const c of VM_FAILURES) t.notOk([1, 10, 11, 12, 13, 14, 15, 16, 17, 18].includes(EXIT_CODES[c]));
});

t.test('an error is rendered with its evidence and next step; an unknown error is internal', async (t) => {
  const e = new KmodvmError('boot', 'QEMU died', { evidence: 'line 1\nline 2', hint: 'read the log' });
  t.equal(formatError(e), 'error [boot]: QEMU died\n  | line 1\n  | line 2\nnext: read the log');
  t.equal(exitCodeOf(e), 5);
  t.equal(exitCodeOf(new Error('x')), 70);
  t.match(formatError(new Error('boom')), /^error \[internal\]: boom/);
});
