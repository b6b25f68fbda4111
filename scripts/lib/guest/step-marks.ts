// Each load step's own kernel lines (#29.15). A load or unload step writes
// a mark into the kernel log before and after its command (/dev/kmsg, in
// the same exec: no extra round trip), so a failed insmod's evidence is the
// lines the kernel printed while that insmod ran, not the log's tail taken
// after the cleanup (where xt_DNETMAP's failure showed xt_CHAOS's later
// oops). The marks are taken out of the log every check and report reads.
// Pure.

import { posixJoin } from '../core/end.ts';

const MARK = 'kmodvm-step: ';
const END = 'kmodvm-step-end: ';

/**
 * One shell line that runs argv with the kernel log marking its start and
 * end, its exit status kept: for a kept shell, which evals each line in a
 * subshell (kept-shell.ts), so the marks cost no process. Every word is
 * quoted: the name and argv are never shell text.
 */
export function markedLine(name: string, argv: readonly string[]): string {
  const mark = (m: string): string => `echo ${posixJoin([`${m}${name}`])} >/dev/kmsg 2>/dev/null`;
  return `${mark(MARK)}; ${posixJoin(argv)}; rc=$?; ${mark(END)}; exit $rc`;
}

// A mark is a whole record: its message starts with it. A line that only contains the words (a module's
// pr_err("… kmodvm-step: …")) is the kernel's, and is neither taken out nor a window's edge.
const MARK_LINE = /^(?:\[\s*\d+\.\d+\]\s*)?kmodvm-step(-end)?: (.+)$/;
const markOf = (line: string): { end: boolean; name: string } | undefined => {
  const m = MARK_LINE.exec(line);
  return m ? { end: Boolean(m[1]), name: m[2]!.trim() } : undefined;
};

/** The kernel lines of step name's last run: between its marks (to the log's end when it never ended, a hang or a crash); undefined when the log has no mark of it. */
export function stepLines(log: string, name: string): string[] | undefined {
  const lines = log.split('\n');
  let from = -1;
  for (let k = lines.length - 1; k >= 0; k--) {
    const m = lines[k]!.includes('kmodvm-step') ? markOf(lines[k]!) : undefined;
    if (m && !m.end && m.name === name) {
      from = k;
      break;
    }
  }
  if (from < 0) return undefined;
  const out: string[] = [];
  for (const l of lines.slice(from + 1)) {
    const m = l.includes('kmodvm-step') ? markOf(l) : undefined;
    if (m?.end && m.name === name) break;
    if (!m && l.trim()) out.push(l);
  }
  return out;
}

/** The log without kmodvm's marks. */
export function withoutMarks(log: string): string {
  if (!log.includes('kmodvm-step')) return log;
  return log
    .split('\n')
    .filter((l) => !markOf(l))
    .join('\n');
}
