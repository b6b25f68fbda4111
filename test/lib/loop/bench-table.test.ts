import t from 'tap';
import { type BenchRow, markdownTable, median, summarize } from '../../../scripts/lib/loop/bench-table.ts';

t.test('medians of odd, even and empty sample sets', async (t) => {
  t.equal(median([3, 1, 2]), 2);
  t.equal(median([4, 1, 3, 2]), 2.5);
  t.equal(median([]), null);
});

t.test('ratios come from the medians; an unmeasured row gives n/a, not a number', async (t) => {
  const rows: BenchRow[] = [
    { key: 'floor', label: 'floor', samples: [4, 4.2, 3.8] },
    { key: 'boot_to_ssh', label: 'boot', samples: [5, 5.2, 4.8] },
    { key: 'resume_to_ssh', label: 'resume', samples: [1.2, 1, 1.4] },
    { key: 'warm_vm_test', label: 'warm', samples: [13] },
    { key: 'classic', label: 'classic', samples: [] },
  ];
  const r = summarize(rows, 3, 'tcg');
  t.same(r.medians_s, { floor: 4, boot_to_ssh: 5, resume_to_ssh: 1.2, warm_vm_test: 13, classic: null });
  t.equal(r.ratios.boot_vs_floor, 1.25);
  t.equal(r.ratios.resume_vs_floor, 0.3);
  t.equal(r.ratios.warm_vs_classic, null);
  t.equal(r.ratios.guest_make_vs_classic, null, 'the make row was not measured');
  const md = markdownTable(rows, r);
  t.match(md, /\| classic \| n\/a \| not measured \|/);
  t.match(md, /\| \*\*boot \/ floor\*\* \| 1\.25 \| \|/);
  t.match(md, /\| \*\*resume \/ floor\*\* \| 0\.3 \| \|/);
});
