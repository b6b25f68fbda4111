// The leak check at rmmod, on what the real run gave (test/fixtures/planted/6.1-memcheck/,
// `kmodvm test --suite test/planted-bugs/kmodvm.yaml --memcheck`, the leak test): the
// module's sections read before rmmod, alloc_traces after it, and the .ko's own tables.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { type KoInfo, parseSections, parseSymbols, siteName } from '../../../scripts/lib/build/ko-debug.ts';
import { findLeaks, leakLine, newTraces, parseAllocTraces, parseLayout } from '../../../scripts/lib/verdict/leaks.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/planted/6.1-memcheck/${f}`, import.meta.url), 'utf8');
const sections = parseSections(fx('planted.ko.readelf-S.txt'));
const info: KoInfo = {
  textSizes: new Map([...sections.values()].filter((s) => s.exec && s.size > 0n).map((s) => [s.name, s.size] as const)),
  functions: parseSymbols(fx('planted.ko.readelf-s.txt'), sections),
};

t.test('the .ko: its code sections and functions', async (t) => {
  t.same([...info.textSizes.keys()].sort(), ['.exit.text', '.init.text', '.text.unlikely'], 'gcc put the cold functions in .text.unlikely; .text is empty');
  const leak = info.functions.find((f) => f.name === 'plant_leak');
  t.equal(leak?.section, '.text.unlikely');
  t.equal(leak?.size, 0x3bn);
});

t.test('the planted leak: one object of kmalloc-128, allocated in plant_leak, named as the kernel names a frame', async (t) => {
  const layout = parseLayout('planted', fx('leak.layout.stdout'), info.textSizes);
  t.same(
    layout.sections.map((s) => s.name),
    ['.exit.text', '.init.text', '.text.unlikely'],
  );
  const traces = parseAllocTraces(fx('leak.alloc_traces.stdout'));
  t.equal(traces.length, 1, 'one site the kernel could not name after rmmod');
  const leaks = findLeaks([layout], traces);
  t.equal(leaks.length, 1);
  t.same(
    { ...leaks[0], offset: Number(leaks[0].offset) },
    { module: 'planted', cache: 'kmalloc-128', count: 1, section: '.text.unlikely', offset: 0x114, detail: 'age=243 pid=148 cpus=0' },
  );
  // The run confirmed it after shrinking the cache (KASAN's quarantine; a no-op here), and logged the confirmed entry.
  const confirmed = findLeaks([layout], newTraces([], parseAllocTraces(fx('leak.alloc_traces-confirmed.stdout'))));
  const line = leakLine(confirmed[0], siteName(info, confirmed[0].section, confirmed[0].offset));
  t.ok(fx('leak.dmesg.log').includes(line), `the line the run wrote to the guest's kernel log: ${line}`);
});

t.test("a leak an earlier test left is not this test's: only sites added since the last scan count", async (t) => {
  const traces = parseAllocTraces(fx('leak.alloc_traces.stdout'));
  t.same(newTraces(traces, traces), []);
  t.same(newTraces(traces, [{ ...traces[0], count: 2 }]).length, 1, 'one more object at the same site is new');
  const otherBoot = parseAllocTraces('/sys/kernel/debug/slab/kmalloc-64/alloc_traces:      1 0xffffffffc036841b age=3996 pid=110 cpus=1\n');
  t.same(findLeaks([parseLayout('planted', fx('leak.layout.stdout'), info.textSizes)], otherBoot), [], "another module's freed init code is not the module's");
});

t.test('a module built in the guest (no .ko on the host): its core from /proc/modules still places the leak', async (t) => {
  const layout = parseLayout('planted', fx('leak.layout.stdout'));
  t.same(layout.sections, [{ name: '(core)', start: 0xffffffffc037e000n, size: 16384n }]);
  const leaks = findLeaks([layout], parseAllocTraces(fx('leak.alloc_traces.stdout')));
  t.equal(leaks.length, 1);
  t.match(leakLine(leaks[0]), /allocated at \(core\)\+0x114 \[planted\]/);
});

t.test('no leak: another module, or a trace the kernel named', async (t) => {
  const layout = parseLayout('other', fx('leak.layout.stdout').replaceAll('planted', 'other'), info.textSizes);
  const moved = { ...layout, sections: layout.sections.map((s) => ({ ...s, start: s.start + 0x100000n })) };
  t.same(findLeaks([moved], parseAllocTraces(fx('leak.alloc_traces.stdout'))), []);
  t.same(parseAllocTraces('/sys/kernel/debug/slab/kmalloc-128/alloc_traces:     63 cdev_alloc+0x1c/0x50 waste=1512/24 age=4637 pid=1 cpus=0\n'), []);
});
