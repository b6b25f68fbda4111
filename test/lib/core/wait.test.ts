import { mkdtemp, readdir, readFile, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { writeAtomic, writeJsonAtomic } from '../../../scripts/lib/core/atomic.ts';
import { settlesWithin, waitUntil } from '../../../scripts/lib/core/wait.ts';

t.test('waitUntil gives the first value the check returns', async (t) => {
  let n = 0;
  const w = await waitUntil(() => (++n === 3 ? 'up' : undefined), { deadlineMs: 5000, intervalMs: 1 });
  t.same({ end: w.end, value: w.end === 'ready' && w.value, n }, { end: 'ready', value: 'up', n: 3 });
});

t.test('waitUntil ends as dead as soon as the process is gone, long before the deadline', async (t) => {
  let alive = true;
  setTimeout(() => {
    alive = false;
  }, 30);
  const w = await waitUntil(() => false, { deadlineMs: 60_000, intervalMs: 5, alive: () => alive });
  t.equal(w.end, 'dead');
  t.ok(w.waitedMs < 5000, `ended after ${w.waitedMs} ms`);
});

t.test('waitUntil ends as timeout at the deadline, and as aborted on the signal', async (t) => {
  t.equal((await waitUntil(() => false, { deadlineMs: 40, intervalMs: 10 })).end, 'timeout');
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 20);
  const w = await waitUntil(() => false, { deadlineMs: 60_000, intervalMs: 30_000, signal: ac.signal });
  t.equal(w.end, 'aborted', 'the abort interrupts the pause itself');
  t.ok(w.waitedMs < 10_000, 'long before the 30 s pause would have ended');
});

t.test('a check that throws ends the wait with its error (a refused host key is not retried)', async (t) => {
  await t.rejects(
    waitUntil(
      () => {
        throw new Error('host key mismatch');
      },
      { deadlineMs: 1000 },
    ),
    /host key mismatch/,
  );
});

t.test('settlesWithin: true when the promise settles in time, false when not', async (t) => {
  t.equal(await settlesWithin(Promise.resolve(1), 1000), true);
  t.equal(await settlesWithin(Promise.reject(new Error('x')), 1000), true, 'a rejection is settling too');
  t.equal(await settlesWithin(new Promise(() => undefined), 30), false);
});

t.test('writeAtomic leaves the whole new file, mode 0600 by default, and no temporary beside it', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-atomic-'));
  const f = path.join(dir, 'state.json');
  await writeJsonAtomic(f, { a: 1 });
  await writeAtomic(f, 'x'.repeat(1 << 20));
  t.equal((await readFile(f, 'utf8')).length, 1 << 20);
  t.equal((await stat(f)).mode & 0o777, 0o600);
  t.same(await readdir(dir), ['state.json']);
  await writeAtomic(path.join(dir, 'obj.o'), 'o', { mode: 0o644 });
  t.equal((await stat(path.join(dir, 'obj.o'))).mode & 0o777, 0o644);
});
