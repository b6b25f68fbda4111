import t from 'tap';
import { debouncer, verdictScreen } from '../../../scripts/lib/loop/watch.ts';
import type { RunReport } from '../../../scripts/lib/verdict/model.ts';

t.test('saves in quick succession make one run with every changed path', async (t) => {
  const fired: string[][] = [];
  const on = debouncer(30, (ps) => fired.push(ps));
  on('/r/b.c');
  on('/r/a.c');
  on('/r/b.c');
  await new Promise((r) => setTimeout(r, 80));
  t.same(fired, [['/r/a.c', '/r/b.c']]);
  on('/r/c.c');
  await new Promise((r) => setTimeout(r, 80));
  t.same(fired.length, 2);
});

t.test('the one-screen verdict: what changed, the build, the failure with its evidence', async (t) => {
  const r: RunReport = {
    verdict: 'fail',
    failure: 'build',
    exitCode: 10,
    runDir: '/repo/runs/x',
    accel: 'tcg',
    startedAt: '',
    durationMs: 1,
    checks: [
      {
        name: 'build-module',
        ok: false,
        failure: 'build',
        durationMs: 1,
        message: 'the module does not build (on the host)',
        evidence: "/repo/kernel-module/a.c:3:1: error: expected ';'",
      },
    ],
  };
  const s = verdictScreen(r, ['/repo/kernel-module/a.c'], 2345, '/repo');
  t.match(s, /FAIL \(build\) · save to verdict 2\.3 s/);
  t.match(s, /changed: kernel-module\/a\.c/);
  t.match(s, /build:   module FAILED/);
  t.match(s, /  \/repo\/kernel-module\/a\.c:3:1: error: expected ';'/);
});
