// Which frame of a real report says where it happened (test/fixtures/planted/).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { bareAddresses, firstSource, moduleFrames, type Sources } from '../../../scripts/lib/verdict/frames.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/planted/${f}`, import.meta.url), 'utf8');
/** Every planted frame gets a line of its own, so the test can tell which one was picked. */
const numbered = (log: string): Sources =>
  Object.fromEntries(
    moduleFrames(log, new Set(['planted'])).map((f, k) => [f.text, { file: `/s/planted/planted.c`, rel: 'planted/planted.c', line: 100 + k }]),
  );

t.test("SLUB's double free: the frame in the Call Trace (the second kfree), not the allocation or free stack before it", async (t) => {
  const log = fx('6.1-memcheck/double-free.dmesg.log');
  const lines = log.split('\n').slice(log.split('\n').findIndex((l) => l.includes('Object already free')));
  t.equal(firstSource(lines, numbered(log))?.frame, 'plant_double_free+0x2f/0x35 [planted]');
});

t.test('a frame in the report line itself wins (a kernel BUG with the trace below it); one in a header comes after the suite’s files', async (t) => {
  const lines = ['BUG: KASAN: use-after-free in f+0x1/0x9 [m]', 'Call Trace:', ' g+0x2/0x9 [m]'];
  const src = (rel: string, line: number) => ({ file: `/s/${rel}`, rel, line });
  t.equal(firstSource(lines, { 'f+0x1/0x9 [m]': src('m/m.c', 1), 'g+0x2/0x9 [m]': src('m/m.c', 2) })?.source.line, 1);
  t.equal(firstSource(lines, { 'f+0x1/0x9 [m]': src('/usr/src/include/linux/refcount.h', 1), 'g+0x2/0x9 [m]': src('m/m.c', 2) })?.source.line, 2);
  t.equal(firstSource(lines, undefined), undefined);
});

t.test('frames: each once, only of the named modules; the faulting ones marked exact', async (t) => {
  const log = fx('6.1-memcheck/double-free.dmesg.log');
  const fs = moduleFrames(log, new Set(['planted']));
  t.same(
    fs.map((f) => f.text),
    [...new Set(fs.map((f) => f.text))],
  );
  t.same(moduleFrames(log, new Set(['other'])), []);
  t.ok(moduleFrames('RIP: 0010:f+0x3/0x9 [m]', new Set(['m']))[0].exact);
  t.notOk(moduleFrames(' f+0x3/0x9 [m]', new Set(['m']))[0].exact);
  t.ok(moduleFrames('BUG: KFENCE: use-after-free read in f+0x3/0x9 [m]', new Set(['m']))[0].exact, "KFENCE's is the faulting instruction");
});

t.test('KASAN\'s "in" is its caller\'s return address: on 6.12 a double free names the return from kfree(), looked up one byte back', async (t) => {
  // The debug kernel from linux-source-6.12: "double-free in plant_double_free+0x36/0x40", the instruction after the call.
  const log = fx('6.12-debug/double-free.dmesg.log');
  const [inReport] = moduleFrames(log, new Set(['planted']));
  t.equal(inReport.text, 'plant_double_free+0x36/0x40 [planted]');
  t.match(log, /BUG: KASAN: double-free in plant_double_free\+0x36\/0x40 \[planted\]/);
  t.equal(inReport.exact, false, 'not exact: the source lookup takes offset 0x35, the call on the planted line');
});

t.test('bare addresses: code the kernel can no longer name (here the init code freed after the load) prints so', async (t) => {
  const bare = bareAddresses(fx('6.1-memcheck/use-after-free.dmesg.log'));
  t.ok(bare.length >= 1);
  t.ok(bare.every((b) => /^0xffffffff[0-9a-f]{8}$/.test(b.text) && b.addr === BigInt(b.text)));
});
