// What the static checks found (#27.3), from their own output: a kbuild
// make with W=1 and C=2 CHECK=sparse (gcc's warnings and sparse's), and
// checkpatch.pl --terse. Each
// finding has its tool, file, line and words; paths as the output names
// them (the caller maps the build tree to the user's). Pure; one pass.
import { DIAG } from './gcc-context.ts';

export type StaticTool = 'W=1' | 'sparse' | 'checkpatch';

export interface Finding {
  tool: StaticTool;
  file: string;
  line: number;
  col?: number;
  severity: 'warning' | 'error';
  message: string;
}

// sparse's detail lines ("file:20:18:    expected int *p") belong to the finding above them.
const DETAIL = /^(\S[^:\n]*):(\d+):(?:\d+:)? {4}(.*)$/;

/**
 * gcc's and sparse's findings in a W=1 C=2 kbuild log. Which tool said it:
 * gcc names the option of each warning ("[-Wmissing-prototypes]"), sparse
 * never does. (kbuild's "  CC"/"  CHECK" lines go to stdout and the
 * diagnostics to stderr, so their order does not tell.) An error is gcc's.
 */
export function buildFindings(log: string): Finding[] {
  const out: Finding[] = [];
  for (const line of log.split('\n')) {
    const d = DIAG.exec(line);
    if (d?.[4] === 'note') continue;
    if (d) {
      const severity = d[4] === 'warning' ? 'warning' : 'error';
      const tool: StaticTool = severity === 'error' || /\[-W[\w=-]+\]$/.test(d[5]!) ? 'W=1' : 'sparse';
      out.push({ tool, file: d[1]!, line: Number(d[2]), col: d[3] ? Number(d[3]) : undefined, severity, message: d[5]! });
      continue;
    }
    const x = DETAIL.exec(line);
    const last = out.at(-1);
    if (x && last && last.file === x[1] && last.line === Number(x[2])) last.message += `; ${x[3]!.trim()}`;
  }
  return out;
}

/** checkpatch.pl --terse --file: "FILE:LINE: ERROR|WARNING|CHECK: message". CHECK (--strict's) is a warning. */
export function checkpatchFindings(out: string): Finding[] {
  const found: Finding[] = [];
  for (const m of out.matchAll(/^(\S[^:\n]*):(\d+): (ERROR|WARNING|CHECK): (.*)$/gm))
    found.push({ tool: 'checkpatch', file: m[1]!, line: Number(m[2]), severity: m[3] === 'ERROR' ? 'error' : 'warning', message: m[4]! });
  return found;
}

/** One line a finding, as TAP evidence and the step summary show it. */
export const findingLine = (f: Finding): string => `${f.file}:${f.line}${f.col ? `:${f.col}` : ''}: ${f.tool} ${f.severity}: ${f.message}`;

/** The static check's one-line summary: counts by tool. */
export function findingsSummary(fs: readonly Finding[]): string {
  if (!fs.length) return 'no findings (W=1, sparse, checkpatch)';
  const by = (t: StaticTool): number => fs.filter((f) => f.tool === t).length;
  return `${fs.length} finding${fs.length === 1 ? '' : 's'}: W=1 ${by('W=1')}, sparse ${by('sparse')}, checkpatch ${by('checkpatch')}`;
}
