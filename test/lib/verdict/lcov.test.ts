import { readFileSync } from 'node:fs';
import t from 'tap';
import { belowMin, fileCoverage, ownRecords, percent, summaryLine, totalsOf } from '../../../scripts/lib/verdict/lcov.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/${f}`, import.meta.url), 'utf8');
// lcov 1.16's capture of the netlink demo's counts after its one test, on the debug kernel: the kernel's headers are in it too.
const raw = fx('coverage/netlink.raw.info');
const TREE = '/root/.cache/kmodvm/host-builds/76b47cb07178d00b/tree';

t.test("the suite's own files, named by their path in it; the kernel's headers left out", async (t) => {
  t.equal(fileCoverage(raw).length, 16, 'the capture has the headers the module inlines');
  const own = ownRecords(raw, TREE);
  t.same(
    fileCoverage(own).map((f) => f.file),
    ['kernel-module/netlink_simple_intf.c'],
  );
  t.match(own, /^SF:kernel-module\/netlink_simple_intf\.c\n/);
  t.match(own, /end_of_record\n$/);
  t.equal(ownRecords(raw, `${TREE}/`), own, 'a trailing slash is the same tree');
  t.equal(ownRecords(raw, '/elsewhere'), '', 'nothing under another tree');
});

t.test('the counts are those the run reported: 51 of 80 lines, 28 of 62 branches', async (t) => {
  const totals = totalsOf(fileCoverage(ownRecords(raw, TREE)));
  t.same(totals, { lines: { found: 80, hit: 51 }, branches: { found: 62, hit: 28 } });
  t.equal(summaryLine(totals), 'lines 51/80 (63.7%), branches 28/62 (45.1%)');
  t.equal(percent({ found: 3, hit: 2 }), 66.6, 'rounded down: 66.6 is not yet 66.7');
  t.equal(summaryLine({ lines: { found: 0, hit: 0 }, branches: { found: 0, hit: 0 } }), 'lines: none, branches: none');
});

t.test('coverage_min: lines, branches or both; at the threshold is enough', async (t) => {
  const totals = totalsOf(fileCoverage(ownRecords(raw, TREE)));
  t.same(belowMin(totals, { lines: 75 }), ['lines 63.7% < 75%']);
  t.same(belowMin(totals, { lines: 63.7, branches: 45.1 }), []);
  t.same(belowMin(totals, { lines: 60, branches: 50 }), ['branches 45.1% < 50%']);
  t.same(belowMin(totals, {}), []);
});

t.test("a branch never reached (-) is found and not hit; a path with .. is not the tree's", async (t) => {
  const text = `SF:${TREE}/a.c\nDA:1,1\nDA:2,0\nBRDA:1,0,0,-\nBRDA:1,0,1,3\nend_of_record\nSF:${TREE}/../x.c\nDA:1,1\nend_of_record\n`;
  t.same(fileCoverage(ownRecords(text, TREE)), [{ file: 'a.c', lines: { found: 2, hit: 1 }, branches: { found: 2, hit: 1 } }]);
});
