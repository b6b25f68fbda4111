// Coverage as lcov's tracefile gives it (geninfo(1)): a record per source
// file (SF:), its lines (DA:) and branches (BRDA:), ended by end_of_record.
// Pure: which files are the suite's own (those under the build tree, named
// by their path in the suite), their totals, and the one line a run and a
// test report.

export interface FileCoverage {
  file: string;
  lines: { found: number; hit: number };
  branches: { found: number; hit: number };
}

export interface Totals {
  lines: { found: number; hit: number };
  branches: { found: number; hit: number };
}

/** The records of the files under tree, their SF: relative to it; the kernel's headers and anything else are left out. */
export function ownRecords(tracefile: string, tree: string): string {
  const root = `${tree.replace(/\/$/, '')}/`;
  const out: string[] = [];
  let keep = false;
  for (const l of tracefile.split('\n')) {
    if (l.startsWith('SF:')) {
      const file = l.slice(3);
      keep = file.startsWith(root) && !file.slice(root.length).split('/').includes('..');
      if (keep) out.push(`SF:${file.slice(root.length)}`);
      continue;
    }
    if (keep && l) out.push(l);
    if (l === 'end_of_record') keep = false;
  }
  return out.length ? `${out.join('\n')}\n` : '';
}

/** Each file's counts, from its DA: and BRDA: lines (a branch never reached, "-", is found and not hit). */
export function fileCoverage(tracefile: string): FileCoverage[] {
  const files: FileCoverage[] = [];
  let cur: FileCoverage | undefined;
  for (const l of tracefile.split('\n')) {
    if (l.startsWith('SF:')) {
      cur = { file: l.slice(3), lines: { found: 0, hit: 0 }, branches: { found: 0, hit: 0 } };
      files.push(cur);
    } else if (!cur) continue;
    else if (l.startsWith('DA:')) {
      cur.lines.found++;
      if (Number(l.split(',')[1]) > 0) cur.lines.hit++;
    } else if (l.startsWith('BRDA:')) {
      const taken = l.split(',')[3];
      cur.branches.found++;
      if (taken !== '-' && Number(taken) > 0) cur.branches.hit++;
    } else if (l === 'end_of_record') cur = undefined;
  }
  return files;
}

export function totalsOf(files: readonly FileCoverage[]): Totals {
  const t: Totals = { lines: { found: 0, hit: 0 }, branches: { found: 0, hit: 0 } };
  for (const f of files) {
    t.lines.found += f.lines.found;
    t.lines.hit += f.lines.hit;
    t.branches.found += f.branches.found;
    t.branches.hit += f.branches.hit;
  }
  return t;
}

/** A percentage with one decimal; none found is 100 % of nothing, said as such. */
export const percent = (c: { found: number; hit: number }): number => (c.found ? Math.floor((c.hit / c.found) * 1000) / 10 : 100);

const part = (what: string, c: { found: number; hit: number }): string => (c.found ? `${what} ${c.hit}/${c.found} (${percent(c)}%)` : `${what}: none`);

/** "lines 41/52 (78.8%), branches 12/20 (60%)". */
export const summaryLine = (t: Totals): string => `${part('lines', t.lines)}, ${part('branches', t.branches)}`;

export interface CoverageMin {
  lines?: number;
  branches?: number;
}

/** What falls short of coverage_min, a phrase each; empty when it is met. */
export function belowMin(t: Totals, min: CoverageMin): string[] {
  const out: string[] = [];
  if (min.lines !== undefined && percent(t.lines) < min.lines) out.push(`lines ${percent(t.lines)}% < ${min.lines}%`);
  if (min.branches !== undefined && percent(t.branches) < min.branches) out.push(`branches ${percent(t.branches)}% < ${min.branches}%`);
  return out;
}
