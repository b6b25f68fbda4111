// A compiler error with its context and the user's own line (#29.7), on
// lttng-modules 2.13.9's real build error against Debian's 6.1.0-57 headers
// (hrtimer_start's backported was_armed argument): gcc reports the line of
// lttng's macro in tracepoint-event-impl.h; the line lttng must change is its
// use of the macro in include/instrumentation/events/timer.h.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { contextEvidence, errorContexts } from '../../../scripts/lib/build/gcc-context.ts';

const log = readFileSync(new URL('../../fixtures/gcc-context/lttng-2.13.9-hrtimer-was-armed.log', import.meta.url), 'utf8');
const inTree = (f: string): boolean => f.startsWith('/tmp/lttng/');

t.test("the error, its include chain and its notes, paths made plain, and the user's line it comes from", async (t) => {
  const [c, more] = errorContexts(log, inTree);
  t.equal(more, undefined, 'one error');
  t.equal(
    c?.error,
    '/tmp/lttng/include/lttng/tracepoint-event-impl.h:133:6: error: conflicting types for ‘trace_hrtimer_start’; have ‘void(struct hrtimer *, enum hrtimer_mode)’',
  );
  t.same(c?.origin, { file: '/tmp/lttng/include/instrumentation/events/timer.h', line: 190, col: 1, macro: 'LTTNG_TRACEPOINT_EVENT_MAP' });
  t.same(c?.context.slice(0, 3), [
    'In file included from /tmp/lttng/include/lttng/define_trace.h:87',
    'from /tmp/lttng/include/instrumentation/events/timer.h:398',
    'from /tmp/lttng/src/probes/lttng-probe-timer.c:30',
  ]);
  t.ok(
    c?.context.some((l) =>
      /linux\/tracepoint\.h:244:28: note: previous definition of ‘trace_hrtimer_start’ with type ‘void\(struct hrtimer \*, enum hrtimer_mode, {2}bool\)’/.test(
        l,
      ),
    ),
    "the kernel's own definition, which says what changed",
  );
  t.notOk(
    c?.context.some((l) => /\|/.test(l)),
    'no code excerpts',
  );
  t.notOk(
    c?.context.some((l) => /make\[/.test(l)),
    "make's lines end it",
  );
  const ev = contextEvidence([c!]);
  t.match(
    ev,
    /^\/tmp\/lttng\/include\/instrumentation\/events\/timer\.h:190:1: your code, where the error comes from \(its use of LTTNG_TRACEPOINT_EVENT_MAP\)\n\/tmp\/lttng\/include\/lttng\/tracepoint-event-impl\.h:133:6: error:/,
  );
});

t.test('an error in the code itself has no other origin; a header outside the tree is never the origin', async (t) => {
  const plain = 'drv/x.c: In function ‘f’:\ndrv/x.c:3:10: error: ‘nope’ undeclared\n    3 |   return nope;\n      |          ^~~~\nmake[2]: *** Error 1\n';
  const [c] = errorContexts(plain, () => true);
  t.equal(c?.origin, undefined);
  t.same(c?.context, ['drv/x.c: In function ‘f’:']);
  t.same(errorContexts(log, () => false)[0]?.origin, undefined);
});
