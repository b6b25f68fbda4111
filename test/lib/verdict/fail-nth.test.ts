// One N of --fail-nth, on what the real sweep of the netlink module on the debug kernel
// gave (test/fixtures/fail-nth/: `kmodvm test --kernel debian-12-debug --fail-nth 400`).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { injectionSite, judgeNth, parseNth, splitInjections } from '../../../scripts/lib/verdict/fail-nth.ts';
import { parseAllocTraces } from '../../../scripts/lib/verdict/leaks.ts';
import { loadRules } from '../../../scripts/lib/verdict/splat.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/fail-nth/${f}`, import.meta.url), 'utf8');
const rules = loadRules([new URL('../../../rules/splat.json', import.meta.url).pathname]);

t.test('N=9: the module loader’s vmalloc failed; its injection report and the allocator’s warning are not splats', async (t) => {
  const o = parseNth(9, fx('netlink-N9.stdout'));
  t.same([o.injected, o.loaded, o.errno], [true, false, 12]);
  const { rest, injections } = splitInjections(o.dmesg);
  t.equal(injections.length, 1);
  t.equal(injectionSite(injections[0]), '__get_vm_area_node+0x85/0x1a0', 'the first caller past the allocator, not a "? " guess');
  t.notMatch(rest, /Call Trace:|vmalloc error/);
  const checks = judgeNth(o, [], rules, 'netlink_simple_intf');
  t.same(
    checks.map((c) => [c.name, c.ok]),
    [
      ['load', true],
      ['no-splat', true],
      ['no-leak', true],
    ],
  );
  t.match(checks[0].message, /^N=9: the 9th allocation of the load failed, at __get_vm_area_node\+0x85\/0x1a0; netlink_simple_intf was refused \(errno 12\)$/);
});

t.test('N=1: an allocation that asked for __GFP_NOWARN fails without a report', async (t) => {
  const o = parseNth(1, fx('netlink-N1.stdout'));
  t.same([o.injected, o.loaded], [true, false]);
  t.match(judgeNth(o, [], rules, 'netlink_simple_intf')[0].message, /failed \(silently: it asked for __GFP_NOWARN\)/);
});

t.test('a splat that is not the injection’s fails the N; so do objects the error path left behind', async (t) => {
  const o = parseNth(9, fx('netlink-N9.stdout'));
  const oops = { ...o, dmesg: `${o.dmesg}\n[   85.1] BUG: KASAN: use-after-free in nl_init+0x1/0x9 [netlink_simple_intf]\n` };
  const splat = judgeNth(oops, [], rules, 'netlink_simple_intf').find((c) => c.name === 'no-splat')!;
  t.same([splat.ok, splat.splatId], [false, 'kasan']);
  t.match(splat.evidence, /^N=9: the 9th allocation of the load failed, at __get_vm_area_node/);
  t.same(parseAllocTraces(fx('netlink.leak-scan.stdout')), [], 'the debug kernel builds every driver in: no site of freed code before the sweep');
  // On the stock kernel the initrd's modules leave sites in their freed init code: the baseline.
  const before = parseAllocTraces(readFileSync(new URL('../../fixtures/planted/6.1-memcheck/leak.alloc_traces.stdout', import.meta.url), 'utf8'));
  t.ok(before.length > 0);
  const added = { ...o, traces: [...before, { cache: 'kmalloc-64', count: 1, addr: 0xffffffffa0009010n, detail: 'age=5 pid=130 cpus=0' }] };
  const leak = judgeNth(added, before, rules, 'netlink_simple_intf').find((c) => c.name === 'no-leak')!;
  t.equal(leak.ok, false);
  t.match(leak.message, /1 object of kmalloc-64 allocated at 0xffffffffa0009010, still allocated after the failed load/);
  t.equal(
    judgeNth({ ...o, traces: before }, before, rules, 'netlink_simple_intf').find((c) => c.name === 'no-leak')!.ok,
    true,
    'the baseline alone is no leak',
  );
});

t.test('not reached: the load made fewer allocations than N', async (t) => {
  const o = parseNth(1000000, 'fail-nth: N=1000000 not-reached init_module=0 errno=0 left=999812\n@@kmodvm-traces\n@@kmodvm-dmesg\n');
  t.same([o.injected, o.loaded, o.left], [false, true, 999812], 'a load with an N it never reaches counts its allocations: 188');
});
