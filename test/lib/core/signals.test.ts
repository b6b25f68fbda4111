import t from 'tap';

t.test('signals exit as a shell reports them: 128 + the signal number', async (t) => {
  const { SIGNAL_EXIT } = await import('../../../scripts/lib/core/signals.ts');
  const os = await import('node:os');
  for (const [sig, code] of Object.entries(SIGNAL_EXIT)) t.equal(code, 128 + os.constants.signals[sig as 'SIGINT'], sig);
  t.same(SIGNAL_EXIT, { SIGHUP: 129, SIGINT: 130, SIGTERM: 143 });
});

t.test('while an interactive gdb holds Ctrl-C, SIGINT does not end kmodvm (or kill QEMU); released, it does; SIGTERM always does', async (t) => {
  const { execa } = await import('execa');
  const mod = new URL('../../../scripts/lib/core/signals.ts', import.meta.url).pathname;
  const script = `
    import { holdSigint, onSignalCleanup } from ${JSON.stringify(mod)};
    onSignalCleanup((s) => console.log('cleanup ' + s));
    const release = holdSigint();
    process.kill(process.pid, 'SIGINT');
    setTimeout(() => { console.log('still here'); release(); process.kill(process.pid, process.argv[2]); setTimeout(() => console.log('not reached'), 2000); }, 200);
  `;
  const { mkdtempSync, writeFileSync } = await import('node:fs');
  const file = `${mkdtempSync('/tmp/kmodvm-sig-')}/hold.mts`;
  writeFileSync(file, script);
  const run = (sig: string) => execa('node', ['--import', 'tsx', file, sig], { reject: false, timeout: 20_000 });
  const int = await run('SIGINT');
  t.equal(int.exitCode, 130);
  t.equal(int.stdout, 'still here\ncleanup SIGINT');
  const term = await run('SIGTERM');
  t.equal(term.exitCode, 143);
});
