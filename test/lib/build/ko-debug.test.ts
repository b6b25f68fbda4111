// binutils' answers about a real .ko (test/planted-bugs/planted, built against Debian's
// 6.1 headers; the outputs kept in test/fixtures/planted/6.1-memcheck/).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseAddr2line, parseSections, parseSymbols, siteName } from '../../../scripts/lib/build/ko-debug.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/planted/6.1-memcheck/${f}`, import.meta.url), 'utf8');

t.test('addr2line -a -f -i: the outermost frame of each address, past the inlined kmalloc of slab.h', async (t) => {
  const locs = parseAddr2line(fx('planted.ko.addr2line.txt'));
  t.equal(locs.length, 2);
  t.match(locs[0], /\/tree\/planted\/planted\.c:74$/);
  t.match(locs[1], /\/tree\/planted\/planted\.c:113$/);
  t.same(parseAddr2line('0x0000000000000010\n??\n??:0\n'), [undefined], 'no line info: nothing, not ??:0');
  t.same(parseAddr2line('0x0000000000000010\nf\n/x/a.c:9 (discriminator 2)\n'), ['/x/a.c:9']);
});

t.test('readelf: sections by index, functions by section, and a section offset named as the kernel would', async (t) => {
  const sections = parseSections(fx('planted.ko.readelf-S.txt'));
  t.equal(sections.get(4)?.name, '.text.unlikely');
  t.ok(sections.get(4)?.exec);
  t.equal(sections.get(1)?.name, '.note.gnu.build-id', 'a name as wide as its column');
  t.notOk([...sections.values()].find((s) => s.name === '.data')?.exec);
  const functions = parseSymbols(fx('planted.ko.readelf-s.txt'), sections);
  const names = functions.map((f) => f.name);
  for (const n of ['plant_leak', 'plant_double_free', 'init_module', 'cleanup_module']) t.ok(names.includes(n), n);
  const info = { textSizes: new Map(), functions };
  t.equal(siteName(info, '.text.unlikely', 0x114n), 'plant_leak+0x1b/0x3b');
  t.equal(siteName(info, '.data', 0n), undefined);
});
