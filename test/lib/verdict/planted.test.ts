// The reference column of issue 17's table: the ten planted bugs of
// test/planted-bugs/ on the stock Debian 6.1 kernel, as `kmodvm test --suite
// test/planted-bugs/kmodvm.yaml` ran them on 2026-12-01 (each test's kernel
// log kept in test/fixtures/planted/6.1-stock/). Five are caught today, each
// naming the planted function; five pass silently. When --memcheck or a
// debug kernel catches more, its captures get a table of their own.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseSections, parseSymbols, siteName } from '../../../scripts/lib/build/ko-debug.ts';
import { bareAddresses, moduleFrames } from '../../../scripts/lib/verdict/frames.ts';
import { parseLayout } from '../../../scripts/lib/verdict/leaks.ts';
import { findSplats, loadRules } from '../../../scripts/lib/verdict/splat.ts';

const rules = loadRules([new URL('../../../rules/splat.json', import.meta.url).pathname]);
const log = (bug: string): string => readFileSync(new URL(`../../fixtures/planted/6.1-stock/${bug}.dmesg.log`, import.meta.url), 'utf8');
const source = readFileSync(new URL('../../planted-bugs/planted/planted.c', import.meta.url), 'utf8');

const CAUGHT: Record<string, { id: string; fn: string }> = {
  'heap-overflow': { id: 'kernel-bug-at', fn: 'plant_heap_overflow' }, // FORTIFY_SOURCE: "detected buffer overflow in memset"
  // SLUB's freelist check: "kernel BUG at mm/slub.c".
  'double-free': { id: 'kernel-bug-at', fn: 'plant_double_free' },
  'sleep-atomic': { id: 'sleep-in-atomic', fn: 'plant_sleep_atomic' }, // "BUG: scheduling while atomic"
  refcount: { id: 'refcount', fn: 'plant_refcount' }, // "refcount_t: underflow"
  'list-del': { id: 'list-corruption', fn: 'plant_list_del' },
};
const MISSED = ['use-after-free', 'leak', 'gfp-atomic', 'abba', 'stack-oob'];

t.test('each planted bug is at one marked line of planted.c', async (t) => {
  for (const bug of [...Object.keys(CAUGHT), ...MISSED]) t.equal(source.split(`/* PLANTED ${bug} */`).length - 1, 1, bug);
});

t.test('the stock 6.1 kernel reports five of the ten, each in the planted function', async (t) => {
  for (const [bug, want] of Object.entries(CAUGHT)) {
    const s = findSplats(log(bug), rules, bug);
    t.ok(s.length > 0, `${bug}: caught`);
    t.ok(
      s.some((x) => x.id === want.id),
      `${bug}: ${want.id} among ${s.map((x) => x.id).join(', ')}`,
    );
    t.match(log(bug), new RegExp(`${want.fn}\\+0x[0-9a-f]+/0x[0-9a-f]+ \\[planted\\]`), `${bug}: the trace names ${want.fn}`);
  }
});

t.test('and lets the other five through: a write after kfree, a leak, GFP_KERNEL under a spinlock, AB-BA, a stack over-read', async (t) => {
  for (const bug of MISSED) {
    t.same(
      findSplats(log(bug), rules, bug).map((x) => x.id),
      [],
      `${bug}: no splat on the stock kernel (what --memcheck and the debug kernel are for)`,
    );
    t.match(log(bug), new RegExp(`planted: bug=${bug} planted`), `${bug}: it did run`);
  }
});

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/planted/6.1-memcheck/${f}`, import.meta.url), 'utf8');
const mc = (bug: string): string => readFileSync(new URL(`../../fixtures/planted/6.1-memcheck/${bug}.dmesg.log`, import.meta.url), 'utf8');

t.test('--memcheck on the same stock kernel catches seven of ten, each as its kind, in the planted function', async (t) => {
  const MEMCHECK: Record<string, { id: string; fn: string }> = {
    'heap-overflow': { id: 'kernel-bug-at', fn: 'plant_heap_overflow' },
    // slub_debug=FZPU and the slab validation after the test: "Poison overwritten", with where the object was allocated and freed.
    'use-after-free': { id: 'slub-use-after-free', fn: 'plant_use_after_free' },
    'double-free': { id: 'slub-double-free', fn: 'plant_double_free' },
    // The leak check at rmmod (slub_debug=U's alloc_traces against the module's sections), written into the guest's log.
    leak: { id: 'memcheck-leak', fn: 'plant_leak' },
    'sleep-atomic': { id: 'sleep-in-atomic', fn: 'plant_sleep_atomic' },
    refcount: { id: 'refcount', fn: 'plant_refcount' },
    'list-del': { id: 'list-corruption', fn: 'plant_list_del' },
  };
  for (const [bug, want] of Object.entries(MEMCHECK)) {
    const s = findSplats(mc(bug), rules, bug);
    t.equal(s[0]?.id, want.id, `${bug}: first splat ${want.id} (all: ${s.map((x) => x.id).join(', ')})`);
    if (bug === 'use-after-free') continue;
    t.ok(
      moduleFrames(mc(bug), new Set(['planted'])).some((f) => f.func === want.fn),
      `${bug}: a frame in ${want.fn}`,
    );
  }
});

t.test('a frame in the freed init code is a bare address; the layout read before rmmod names it', async (t) => {
  const log = mc('use-after-free');
  t.match(log, /Allocated in plant_use_after_free\+0x[0-9a-f]+\/0x[0-9a-f]+ \[planted\]/);
  t.match(log, /Freed in plant_use_after_free\+0x[0-9a-f]+\/0x[0-9a-f]+ \[planted\]/);
  const bare = bareAddresses(log);
  t.ok(bare.length > 0, 'the caller, planted_init, was in .init.text, freed once the load was done');
  const sections = parseSections(fx('planted.ko.readelf-S.txt'));
  const info = {
    textSizes: new Map([...sections.values()].filter((x) => x.exec).map((x) => [x.name, x.size] as const)),
    functions: parseSymbols(fx('planted.ko.readelf-s.txt'), sections),
  };
  const layout = parseLayout('planted', fx('use-after-free.layout.stdout'), info.textSizes);
  const addr = bare[0].addr;
  const sec = layout.sections.find((x) => addr >= x.start && addr < x.start + x.size);
  t.equal(sec?.name, '.init.text');
  t.match(siteName(info, sec!.name, addr - sec!.start), /^(init_module|planted_init)\+0x[0-9a-f]+\/0x[0-9a-f]+$/);
});

t.test('what only a debug kernel sees stays silent under --memcheck', async (t) => {
  for (const bug of ['gfp-atomic', 'abba', 'stack-oob'])
    t.same(
      findSplats(mc(bug), rules, bug).map((x) => x.id),
      [],
      `${bug}: still silent (needs DEBUG_ATOMIC_SLEEP, lockdep, KASAN: the debug kernel)`,
    );
});
