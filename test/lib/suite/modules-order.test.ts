import { readFileSync } from 'node:fs';
import t from 'tap';
import { modulesFromOrder } from '../../../scripts/lib/suite/modules-order.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/${f}`, import.meta.url), 'utf8');

t.test('recorded 6.1 M= builds: absolute .ko paths; a dash in the file name is an underscore in the module name', async (t) => {
  const b = '/tmp/bebop/runs/2026-12-01T16-48-40-597Z-20554/build';
  t.same(
    modulesFromOrder(fx('suite-6.1/driver.modules.order.txt'), `${b}/driver`),
    [{ name: 'bebop_core', ko: 'bebop_core.ko' }],
    'a multi-file module is one module',
  );
  t.same(modulesFromOrder(fx('suite-6.1/consumer.modules.order.txt'), `${b}/consumer`), [{ name: 'bebop_user', ko: 'bebop-user.ko' }]);
  t.same(modulesFromOrder(fx('kbuild-6.1/modules.order.txt'), '/tmp/exp/kb'), [{ name: 'netlink_simple_intf', ko: 'netlink_simple_intf.ko' }]);
});

t.test('6.2 and later list the .o, relative; before 5.4 a kernel/ prefix; several modules keep their order', async (t) => {
  t.same(modulesFromOrder('a.o\nsub/b-c.o\n', '/m'), [
    { name: 'a', ko: 'a.ko' },
    { name: 'b_c', ko: 'sub/b-c.ko' },
  ]);
  t.same(modulesFromOrder('kernel//m/x.ko\n', '/m'), [{ name: 'x', ko: 'x.ko' }]);
  t.same(modulesFromOrder('\n/elsewhere/y.ko\na.o\na.o\n', '/m'), [{ name: 'a', ko: 'a.ko' }], 'outside the dir and repeats left out');
});

t.test('load: and skip: pick which built modules load, by name or glob, - and _ alike (#29.10)', async (t) => {
  const { loads, nameMatches } = await import('../../../scripts/lib/suite/modules-order.ts');
  t.ok(nameMatches('xt_CHAOS', 'xt_*'));
  t.ok(nameMatches('xt_DNETMAP', 'xt-DNETMAP'));
  t.notOk(nameMatches('compat_xtables', 'xt_*'));
  t.ok(nameMatches('a.b', 'a.b') && !nameMatches('axb', 'a.b'), 'a dot is a dot');
  const dir = { load: ['xt_*', 'compat_xtables'], skip: ['xt_CHAOS'] };
  t.same(
    ['compat_xtables', 'xt_CHAOS', 'xt_DNETMAP', 'xt_ipp2p', 'other'].filter((n) => loads(n, dir)),
    ['compat_xtables', 'xt_DNETMAP', 'xt_ipp2p'],
  );
  t.ok(loads('anything', {}), 'without load: or skip:, every module loads');
});

t.test("load:'s order breaks ties before modules.order: lttng's clock plugin before the tracer that takes the clock", async (t) => {
  const { inLoadOrder } = await import('../../../scripts/lib/suite/modules-order.ts');
  const { orderByDepends } = await import('../../../scripts/lib/suite/load-order.ts');
  // modules.order of lttng-modules 2.13.9 (shortened): the plugin test last.
  const built = ['lttng_clock', 'lttng_tracer', 'lttng_probe_sched', 'lttng_lib_ring_buffer', 'lttng_clock_plugin_test'].map((name) => ({ name }));
  const listed = inLoadOrder(built, { load: ['lttng_clock', 'lttng-clock-plugin-test', '*'] });
  t.same(
    listed.map((m) => m.name),
    ['lttng_clock', 'lttng_clock_plugin_test', 'lttng_tracer', 'lttng_probe_sched', 'lttng_lib_ring_buffer'],
  );
  const depends = new Map([
    ['lttng_tracer', ['lttng_clock', 'lttng_lib_ring_buffer']],
    ['lttng_clock_plugin_test', ['lttng_clock']],
    ['lttng_probe_sched', ['lttng_tracer']],
  ]);
  const r = orderByDepends(listed, depends);
  t.ok(r.ok);
  if (r.ok)
    t.same(
      r.modules.map((m) => m.name),
      ['lttng_clock', 'lttng_clock_plugin_test', 'lttng_lib_ring_buffer', 'lttng_tracer', 'lttng_probe_sched'],
      'depends= still first',
    );
  t.same(
    inLoadOrder(built, {}).map((m) => m.name),
    built.map((m) => m.name),
    'without load:, modules.order',
  );
});
