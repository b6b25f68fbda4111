// A compiler error with the context gcc gave it (#29.7): the include chain
// before it, its notes after it ("in expansion of macro", "previous
// definition"), paths made plain (src/probes/../../include → include), and
// the line of the user's own code it comes from. An error inside a macro of
// a header names the header's line; what the user must change is where
// their code uses the macro, gcc's outermost "in expansion of macro" note in
// their tree. Pure; one pass over the lines.
import path from 'node:path';

export interface ErrorContext {
  /** The error's own line, paths plain. */
  error: string;
  /** Its include chain and notes, paths plain, code excerpts left out. */
  context: string[];
  /** The user's own line it comes from, when that is not the error's own. */
  origin?: { file: string; line: number; col?: number; macro?: string };
}

/** A gcc or sparse diagnostic line: file, line, column, severity (a note too), message. */
export const DIAG = /^(\S[^:\n]*):(\d+):(?:(\d+):)? (error|warning|fatal error|note): (.*)$/;
const INCLUDED = /^(In file included from|\s+from) (\S[^:\n]*):(\d+)(?::\d+)?[,:]$/;
const IN_FUNCTION = /^(\S[^:\n]*): In (function|member function|instantiation|static function) /;
const MAX_ERRORS = 3;
const MAX_CONTEXT = 30;

/** A diagnostic's "file:line[:col]:" prefix with its path made plain. */
const plainDiag = (line: string): string =>
  line.replace(
    DIAG,
    (_m, f: string, l: string, c: string | undefined, sev: string, msg: string) => `${path.normalize(f)}:${l}:${c ? `${c}:` : ''} ${sev}: ${msg}`,
  );
const plainIncluded = (line: string): string => line.replace(INCLUDED, (_m, w: string, f: string, l: string) => `${w.trim()} ${path.normalize(f)}:${l}`);

/**
 * The first errors of a build's output with their context; inTree says
 * whether a (plain) path is the user's own.
 */
export function errorContexts(output: string, inTree: (file: string) => boolean): ErrorContext[] {
  const lines = output.split('\n');
  const out: ErrorContext[] = [];
  for (let k = 0; k < lines.length && out.length < MAX_ERRORS; k++) {
    const m = DIAG.exec(lines[k]!);
    if (!m || (m[4] !== 'error' && m[4] !== 'fatal error')) continue;
    const before: string[] = [];
    for (let b = k - 1; b >= 0 && (INCLUDED.test(lines[b]!) || IN_FUNCTION.test(lines[b]!)) && before.length < MAX_CONTEXT; b--)
      before.unshift(INCLUDED.test(lines[b]!) ? plainIncluded(lines[b]!) : lines[b]!);
    const after: string[] = [];
    let origin: ErrorContext['origin'];
    // The expansion notes come first, innermost to outermost; a later note ("previous definition") starts another chain.
    let expanding = true;
    let n = k + 1;
    for (; n < lines.length; n++) {
      const l = lines[n]!;
      const d = DIAG.exec(l);
      if (d && d[4] !== 'note') break;
      if (d) {
        const file = path.normalize(d[1]!);
        const macro = /in expansion of macro ‘([^’]+)’|in expansion of macro '([^']+)'/.exec(d[5]!);
        if (!macro) expanding = false;
        else if (expanding && inTree(file)) origin = { file, line: Number(d[2]), col: d[3] ? Number(d[3]) : undefined, macro: macro[1] ?? macro[2] };
        if (after.length < MAX_CONTEXT) after.push(plainDiag(l));
      } else if (INCLUDED.test(l)) {
        if (after.length < MAX_CONTEXT) after.push(plainIncluded(l));
      } else if (!/^\s*(\d+\s*)?\|/.test(l) && !IN_FUNCTION.test(l)) break; // a code excerpt ("  133 | …", "      | ^~~") is left out; anything else ends the error
    }
    const file = path.normalize(m[1]!);
    const own = origin && origin.file === file && origin.line === Number(m[2]);
    out.push({ error: plainDiag(lines[k]!), context: [...before, ...after], origin: own ? undefined : origin });
    k = n - 1;
  }
  return out;
}

/** The evidence of errorContexts: the user's line first, then the error and its context. */
export function contextEvidence(cs: readonly ErrorContext[]): string {
  return cs
    .map((c) => {
      const o = c.origin;
      const head = o ? [`${o.file}:${o.line}${o.col ? `:${o.col}` : ''}: your code, where the error comes from (its use of ${o.macro ?? 'a macro'})`] : [];
      return [...head, c.error, ...c.context.map((l) => `  ${l}`)].join('\n');
    })
    .join('\n');
}
