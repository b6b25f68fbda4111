// The one way to wait: a readiness check against a deadline that also notices
// a dead process and an abort, on timers/promises. Never a bare sleep.
import { setTimeout as sleep } from 'node:timers/promises';

export interface WaitOptions {
  /** How long from now, in ms. */
  deadlineMs: number;
  /** Between checks; default 50 ms. */
  intervalMs?: number;
  /** When it turns false, the wait ends at once as 'dead'. */
  alive?: () => boolean;
  signal?: AbortSignal;
}

export type Waited<T> = { end: 'ready'; value: T; waitedMs: number } | { end: 'timeout' | 'dead' | 'aborted'; waitedMs: number };

type Check<T> = () => T | undefined | null | false | Promise<T | undefined | null | false>;

/** Runs check until it gives a value (not undefined, null or false), the deadline passes, alive() fails or the signal aborts. */
export async function waitUntil<T>(check: Check<T>, o: WaitOptions): Promise<Waited<T>> {
  const t0 = Date.now();
  const deadline = t0 + o.deadlineMs;
  const ended = (end: 'timeout' | 'dead' | 'aborted'): Waited<T> => ({ end, waitedMs: Date.now() - t0 });
  for (;;) {
    if (o.signal?.aborted) return ended('aborted');
    const v = await check();
    if (v !== undefined && v !== null && v !== false) return { end: 'ready', value: v as T, waitedMs: Date.now() - t0 };
    if (o.alive && !o.alive()) return ended('dead');
    const left = deadline - Date.now();
    if (left <= 0) return ended('timeout');
    try {
      await sleep(Math.min(o.intervalMs ?? 50, left), undefined, { signal: o.signal });
    } catch {
      return ended('aborted');
    }
  }
}

/** Waits for p at most ms; true when it settled in time. The timer is cleared either way. */
export async function settlesWithin(p: Promise<unknown>, ms: number): Promise<boolean> {
  const ac = new AbortController();
  const timer = sleep(ms, false, { signal: ac.signal }).catch(() => false);
  try {
    return await Promise.race([
      p.then(
        () => true,
        () => true,
      ),
      timer,
    ]);
  } finally {
    ac.abort();
  }
}
