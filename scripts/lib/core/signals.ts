// Signals: one handler for SIGINT, SIGTERM and SIGHUP for the whole process,
// the cleanups that run first (the VM reaper kills QEMU), and a command's own
// graceful handling (vm:watch). Tested in test/lib/core/signals.test.ts.

/** The exit code of a process ended by a signal, as a shell reports it: 128 + the signal's number (SIGINT 130, SIGTERM 143, SIGHUP 129). */
export const SIGNAL_EXIT: Readonly<Record<'SIGINT' | 'SIGTERM' | 'SIGHUP', number>> = Object.freeze({ SIGHUP: 129, SIGINT: 130, SIGTERM: 143 });

type Sig = keyof typeof SIGNAL_EXIT;
const cleanups = new Set<(sig: Sig) => void>();
const graceful = new Map<Sig, Set<() => void>>();
let signalsInstalled = false;
let sigintHeld = 0;

/** Ctrl-C goes to a child at our terminal (an interactive gdb) until the returned release is called; SIGTERM and SIGHUP still end kmodvm. */
export function holdSigint(): () => void {
  installSignalHandling();
  sigintHeld++;
  let released = false;
  return () => {
    if (!released) sigintHeld--;
    released = true;
  };
}

/**
 * One handler for SIGINT, SIGTERM and SIGHUP for the whole process: the
 * cleanups run (the VM reaper kills QEMU), then a command's own graceful
 * handler, if one is registered for that signal, ends the process itself
 * (vm:watch closes its watcher); otherwise the process exits with 128 + the
 * signal's number. Idempotent.
 */
export function installSignalHandling(): void {
  if (signalsInstalled) return;
  signalsInstalled = true;
  for (const sig of Object.keys(SIGNAL_EXIT) as Sig[]) {
    process.on(sig, () => {
      // While an interactive gdb has the terminal, Ctrl-C is gdb's (it stops the guest), not the end of kmodvm.
      if (sig === 'SIGINT' && sigintHeld > 0) return;
      for (const f of cleanups) f(sig);
      const g = graceful.get(sig);
      if (g?.size) {
        for (const f of g) f();
        return;
      }
      process.exit(SIGNAL_EXIT[sig]);
    });
  }
}

/** Runs on every handled signal, before the process ends. */
export function onSignalCleanup(f: (sig: Sig) => void): void {
  installSignalHandling();
  cleanups.add(f);
}

/** A command's own handling of a signal, in place of exiting; returns its removal. */
export function onSignal(sig: Sig, f: () => void): () => void {
  installSignalHandling();
  const set = graceful.get(sig) ?? new Set();
  graceful.set(sig, set.add(f));
  return () => {
    set.delete(f);
  };
}
