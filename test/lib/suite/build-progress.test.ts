// A long host build says how far it is (#29.17), on kbuild's real quiet
// lines (lttng-modules 2.13.9's build against Debian's 6.1 headers).
import t from 'tap';
import { lineSplitter } from '../../../scripts/lib/core/proc.ts';
import { buildProgress } from '../../../scripts/lib/suite/build-progress.ts';

const lines = [
  "make -C /root/.cache/kmodvm/images/5a413fa940ea06e5/headers/usr/src/linux-headers-6.1.0-57-amd64 M=/tmp/lttng/src CONFIG_LTTNG=m CONFIG_LTTNG_CLOCK_PLUGIN_TEST=m KCPPFLAGS='' modules",
  "make[1]: Entering directory '/root/.cache/kmodvm/images/5a413fa940ea06e5/headers/usr/src/linux-headers-6.1.0-57-amd64'",
  '  CC [M]  /tmp/lttng/src/lib/ringbuffer/ring_buffer_backend.o',
  '  CC [M]  /tmp/lttng/src/lib/ringbuffer/ring_buffer_frontend.o',
  '  LD [M]  /tmp/lttng/src/lib/lttng-counter.o',
  '  CC [M]  /tmp/lttng/src/lttng-events.o',
];

t.test('objects compiled, per module dir, said every tick while the dir builds', async (t) => {
  const said: string[] = [];
  let now = 1000;
  const p = buildProgress({ log: (l) => said.push(l), verbose: false, now: () => now, everyMs: 3_600_000 });
  t.teardown(p.stop);
  for (const l of lines) p.onLine('.', l);
  now = 46_000;
  t.same(p.tick(now), ['build-module .: 3 objects compiled so far (45 s)']);
  p.done('.');
  t.same(p.tick(now), [], 'nothing once its make ended');
  t.same(said, [], 'without --verbose, no line of make itself');
});

t.test("--verbose shows make's lines as they come", async (t) => {
  const said: string[] = [];
  const p = buildProgress({ log: (l) => said.push(l), verbose: true, everyMs: 3_600_000 });
  t.teardown(p.stop);
  p.onLine('src/mod/common', lines[2]!);
  t.same(said, ['make src/mod/common|   CC [M]  /tmp/lttng/src/lib/ringbuffer/ring_buffer_backend.o']);
});

t.test('output chunks split anywhere give whole lines', async (t) => {
  const got: string[] = [];
  const s = lineSplitter((l) => got.push(l));
  for (const c of ['  CC [M]  a', '.o\n  CC', ' [M]  b.o\nlast']) s.push(c);
  s.end();
  t.same(got, ['  CC [M]  a.o', '  CC [M]  b.o', 'last']);
});
