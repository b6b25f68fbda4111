// Each load step's own kernel lines (#29.15). A load or unload step writes
// a mark into the kernel log before and after its command (/dev/kmsg, in
// the same exec: no extra round trip), so a failed insmod's evidence is the
// lines the kernel printed while that insmod ran, not the log's tail taken
// after the cleanup (where xt_DNETMAP's failure showed xt_CHAOS's later
// oops). The marks are taken out of the log every check and report reads.
// Pure.

const MARK = 'kmodvm-step: ';
const END = 'kmodvm-step-end: ';

/** argv run so that the kernel log marks its start and end; its exit status kept. The name is an argument, never shell text. */
export function markedArgv(name: string, argv: readonly string[]): string[] {
  const script = `echo "${MARK}$0" >/dev/kmsg 2>/dev/null; "$@"; rc=$?; echo "${END}$0" >/dev/kmsg 2>/dev/null; exit $rc`;
  return ['sh', '-c', script, name, ...argv];
}

const markOf = (line: string): { end: boolean; name: string } | undefined => {
  const k = line.indexOf(MARK);
  if (k >= 0) return { end: false, name: line.slice(k + MARK.length).trim() };
  const e = line.indexOf(END);
  return e >= 0 ? { end: true, name: line.slice(e + END.length).trim() } : undefined;
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
