import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../../scripts/lib/core/config.ts';
import { staleTemp, withImageLock } from '../../../scripts/lib/image/build.ts';

t.test("only a dead process's temporary directories are stale; a running build or import is left alone", async (t) => {
  const alive = (pid: number): boolean => pid === 4242;
  t.equal(staleTemp('.tmp-604710d6ef4c5561-4242', alive), false, 'a build in progress');
  t.equal(staleTemp('.tmp-604710d6ef4c5561-77', alive), true, 'an interrupted build');
  t.equal(staleTemp('.tmp-import-4242', alive), false, 'an import in progress');
  t.equal(staleTemp('.tmp-import-77', alive), true);
  t.equal(staleTemp('604710d6ef4c5561', alive), false, 'an image is never a temporary');
  t.equal(staleTemp('.604710d6ef4c5561.lock', alive), false, 'nor a lock');
  t.equal(staleTemp(`.tmp-604710d6ef4c5561-${process.pid}`), false, 'this process is alive');
});

t.test("two builds of one key take turns: the second waits for the first's lock", async (t) => {
  const c = { ...defaultConfig(), cacheDir: await mkdtemp(path.join(os.tmpdir(), 'kmodvm-imglock-')) };
  const order: string[] = [];
  const logs: string[] = [];
  const build = (who: string, ms: number) =>
    withImageLock(
      c,
      'abcd',
      (l) => logs.push(l),
      async () => {
        order.push(`${who} start`);
        await new Promise((r) => setTimeout(r, ms));
        order.push(`${who} end`);
      },
    );
  await Promise.all([build('first', 300), new Promise((r) => setTimeout(r, 50)).then(() => build('second', 10))]);
  t.same(order, ['first start', 'first end', 'second start', 'second end']);
  t.match(logs.join('\n'), /another kmodvm is building image abcd; waiting for it/);
  t.equal(path.basename(path.dirname(path.join(c.cacheDir, 'images', '.abcd.lock'))), 'images');
});
