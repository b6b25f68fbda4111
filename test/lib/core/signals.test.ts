import t from 'tap';

t.test('signals exit as a shell reports them: 128 + the signal number', async (t) => {
  const { SIGNAL_EXIT } = await import('../../../scripts/lib/core/signals.ts');
  const os = await import('node:os');
  for (const [sig, code] of Object.entries(SIGNAL_EXIT)) t.equal(code, 128 + os.constants.signals[sig as 'SIGINT'], sig);
  t.same(SIGNAL_EXIT, { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 });
});
