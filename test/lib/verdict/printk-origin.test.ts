// Which kernel lines a module printed, by the printk formats in its .ko
// (#29.16), on the real jool 4.1.9 modules and the kernel log of their load
// and unload (test/fixtures/printk-origin/README.md).
import { readFileSync } from 'node:fs';
import t from 'tap';
import { kernelRecords } from '../../../scripts/lib/suite/update.ts';
import { piecesOf, printedBy, printkFormats, wildcardMatch } from '../../../scripts/lib/verdict/printk-origin.ts';

const fx = (f: string): Buffer => readFileSync(new URL(`../../fixtures/printk-origin/${f}`, import.meta.url));
const siit = printkFormats(fx('jool_siit.ko'));
const nat64 = printkFormats(fx('jool.ko'));
const log = kernelRecords(fx('jool-4.1.9-load-unload.dmesg').toString()).map((r) => r[0]!);

t.test("a .ko's printk formats: pr_info's with pr_fmt's prefix, KERN_CONT fragments and catch-alls left out", async (t) => {
  t.ok(
    siit.some((f) => f.text === 'SIIT Jool v4.1.9.0 module inserted.' && !f.bare),
    'the insert line',
  );
  t.ok(
    nat64.some((f) => f.text === 'NAT64 Jool v4.1.9.0 module removed.'),
    'the remove line',
  );
  t.notOk(
    [...siit, ...nat64].some((f) => f.pieces.join('').replace(/[^A-Za-z]/g, '').length < 4),
    'no format that would claim any line',
  );
});

t.test('the lines each module printed, and only those', async (t) => {
  const bySiit = log.filter(printedBy(siit));
  t.same(bySiit, ['SIIT Jool v4.1.9.0 module inserted.', 'SIIT Jool v4.1.9.0 module removed.']);
  const both = log.filter(printedBy([...siit, ...nat64]));
  t.equal(both.length, 4);
  t.notOk(both.includes('random: crng reseeded due to virtual machine fork'), "the kernel's own line is not theirs");
  t.notOk(both.includes('Jool: Core Jool v4.1.9.0 module inserted.'), "jool_common's line is not theirs: its .ko is not given");
});

t.test('conversions stand for any text; %% is a percent sign; a dev_info line is matched after its device', async (t) => {
  t.same(piecesOf('Jool %s/%lx/%s: Packet MTU: %u'), ['Jool ', '/', '/', ': Packet MTU: ', '']);
  t.same(piecesOf('100%% of %pI6c done'), ['100% of ', ' done']);
  t.ok(wildcardMatch('Jool siit/7f/default: Packet MTU: 1500', piecesOf('Jool %s/%lx/%s: Packet MTU: %u')));
  t.notOk(wildcardMatch('Jool siit: Packet MTU: 1500', piecesOf('Jool %s/%lx/%s: Packet MTU: %u')));
  t.ok(wildcardMatch('abab', piecesOf('a%sb')), 'a piece that repeats');
  const dev = printkFormats(Buffer.from('\x00probed, BAR0 at %pa, irq %d\n\x00'));
  t.ok(dev[0]?.bare);
  t.ok(printedBy(dev)('edu 0000:01:00.0: probed, BAR0 at 0xfea00000, irq 24'));
  t.notOk(printedBy(dev)('probed, BAR0 at 0xfea00000, irq 24 and more'));
});

t.test("a line past the kernel's length is nobody's: the matcher never scans more than 1 KiB a line", async (t) => {
  const f = printkFormats(Buffer.from('\x016long %s line\n\x00'));
  t.ok(printedBy(f)(`long ${'x'.repeat(900)} line`));
  t.notOk(printedBy(f)(`long ${'x'.repeat(1100)} line`));
});
