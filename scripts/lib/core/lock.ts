// Per-key locks between processes (proper-lockfile: a <target>.lock
// directory, refreshed while held, stale 30 s after its holder died). One
// helper for every cache two runs may meet in: an image build, a snapshot
// save, an instance's boot, a suite's build tree.
import path from 'node:path';
import { mkdirPrivate } from './disk.ts';
import { type FailureClass, KmodvmError } from './errors.ts';

export interface LockOptions {
  /** How long to wait for another holder. */
  waitS: number;
  /** Said once, when another process holds it. */
  onWait?: () => void;
  /** The failure class when the wait runs out, and what to call the thing. */
  failure: FailureClass;
  what: string;
}

const opts = (target: string) => ({
  realpath: false,
  stale: 30_000,
  update: 5_000,
  lockfilePath: `${target}.lock`,
  // proper-lockfile's default throws from a timer (a crash, exit 70) when the lock was removed or taken over while held.
  onCompromised: (e: Error) => {
    process.stderr.write(
      `kmodvm: warning: ${target}.lock was removed or taken over while this run held it (${e.message}); another kmodvm may be using the same cache entry\n`,
    );
  },
});

// Loaded when a lock is first used, not at start: `kmodvm ssh` on an instance that is up takes none.
const lockfile = async () => (await import('proper-lockfile')).default;

/** Takes target's lock, waiting for another holder; gives the release. */
export async function acquire(target: string, o: LockOptions): Promise<() => Promise<void>> {
  const { lock } = await lockfile();
  await mkdirPrivate(path.dirname(target));
  const first = await lock(target, opts(target)).catch((e: NodeJS.ErrnoException) => (e.code === 'ELOCKED' ? undefined : Promise.reject(e)));
  if (first) return first;
  o.onWait?.();
  return lock(target, { ...opts(target), retries: { retries: Math.ceil(o.waitS / 2), minTimeout: 200, maxTimeout: 2000, factor: 1.2 } }).catch((e: Error) => {
    throw new KmodvmError(o.failure, `${o.what} stayed locked for ${o.waitS} s: ${e.message}`, { hint: `if no other kmodvm runs, remove ${target}.lock` });
  });
}

/** Runs fn holding target's lock. */
export async function withLock<T>(target: string, o: LockOptions, fn: () => Promise<T>): Promise<T> {
  const release = await acquire(target, o);
  try {
    return await fn();
  } finally {
    await release().catch(() => undefined);
  }
}

/** Whether another process holds target's lock now. */
export async function isLocked(target: string): Promise<boolean> {
  return (await lockfile()).check(target, opts(target)).catch(() => false);
}
