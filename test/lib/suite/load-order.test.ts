import { readFileSync } from 'node:fs';
import t from 'tap';
import { dependsByModule } from '../../../scripts/lib/suite/in-tree-deps.ts';
import { orderByDepends } from '../../../scripts/lib/suite/load-order.ts';

const mods = (...names: string[]) => names.map((name) => ({ name }));

t.test("lttng's shape: modules.order is not a dependency order; each loads after what it needs, ties kept in modules.order's order (#29.2)", async (t) => {
  const r = orderByDepends(
    mods('lttng_probe_sched', 'lttng_tracer', 'lttng_probe_irq', 'lttng_lib_ring_buffer', 'lttng_clock'),
    new Map([
      ['lttng_probe_sched', ['lttng_tracer']],
      ['lttng_probe_irq', ['lttng_tracer']],
      ['lttng_tracer', ['lttng_lib_ring_buffer', 'lttng_clock']],
      ['lttng_lib_ring_buffer', ['lttng_clock']],
    ]),
  );
  t.ok(r.ok);
  if (r.ok)
    t.same(
      r.modules.map((m) => m.name),
      ['lttng_clock', 'lttng_lib_ring_buffer', 'lttng_tracer', 'lttng_probe_sched', 'lttng_probe_irq'],
    );
});

t.test("a dependency on the kernel's own module does not move anything; without depends the order is the given one", async (t) => {
  const r = orderByDepends(mods('b', 'a'), new Map([['b', ['usbcore']]]));
  t.same(r.ok && r.modules.map((m) => m.name), ['b', 'a']);
});

t.test('a cycle is named, module by module', async (t) => {
  const r = orderByDepends(
    mods('a', 'b', 'c'),
    new Map([
      ['a', ['b']],
      ['b', ['c']],
      ['c', ['a']],
    ]),
  );
  t.same(r, { ok: false, cycle: ['a', 'b', 'c', 'a'] });
});

t.test("each module's whole depends= from the guest's probe (recorded in a real guest), the suite's own kept", async (t) => {
  const fx = readFileSync(new URL('../../fixtures/in-tree-deps/uas-alauda-stub.stdout', import.meta.url), 'utf8');
  const k = '/lib/modules/6.1.0-57-amd64/kernel/drivers';
  const d = dependsByModule(fx, [
    { name: 'uas', guestKo: `${k}/usb/storage/uas.ko` },
    { name: 'usb_storage', guestKo: `${k}/usb/storage/usb-storage.ko` },
  ]);
  t.ok(d.get('uas')?.includes('usb_storage'), 'uas needs usb-storage (written with a dash in depends=)');
});
