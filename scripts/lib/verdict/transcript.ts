// The expected transcript: a text file with a [kernel] and an [app] section.
// Placeholders: {{name}} a word, {{name:int}} digits, {{name:hex}}, {{name:any}}
// any text, {{*}} anonymous. A named capture must hold the same value
// everywhere it appears. [kernel] lines must appear in order, with unrelated
// kernel lines allowed between; [app] lines must be the app's output exactly.
import { KmodvmError } from '../core/errors.ts';
import { type Kind, matchTokens, type Token } from './line-match.ts';

export type Section = 'kernel' | 'app';

export interface ExpectedLine {
  section: Section;
  lineNo: number;
  text: string;
  /** Literals and placeholders, matched by line-match.ts in linear time. */
  tokens: Token[];
  names: string[];
}
export interface Transcript {
  kernel: ExpectedLine[];
  app: ExpectedLine[];
  /** Whether the file has an [app] header: without one the app's output is not checked; with an empty one it must print nothing. */
  hasApp?: boolean;
}

const KINDS = new Set(['word', 'int', 'hex', 'any']);

function compileLine(text: string, section: Section, lineNo: number, file: string): ExpectedLine {
  const tokens: Token[] = [];
  const names: string[] = [];
  let last = 0;
  for (const m of text.matchAll(/\{\{\s*(\*|[A-Za-z_]\w*)(?::(\w+))?\s*\}\}/g)) {
    if (m.index > last) tokens.push({ lit: text.slice(last, m.index) });
    last = m.index + m[0].length;
    const [, name, kind = name === '*' ? 'any' : 'word'] = m;
    if (!KINDS.has(kind)) throw new KmodvmError('usage', `${file}:${lineNo}: unknown placeholder kind "${kind}" (use word, int, hex or any)`);
    tokens.push({ name: name === '*' ? undefined : name, kind: kind as Kind });
    if (name !== '*' && !names.includes(name)) names.push(name);
  }
  if (last < text.length) tokens.push({ lit: text.slice(last) });
  return { section, lineNo, text, tokens, names };
}

export function parseTranscript(text: string, file = 'transcript'): Transcript {
  const t: Transcript = { kernel: [], app: [], hasApp: false };
  let section: Section | undefined;
  text.split('\n').forEach((raw, i) => {
    const line = raw.replace(/\r$/, '');
    if (line.startsWith('#') || line.trim() === '') return;
    const h = /^\[(kernel|app)\]\s*$/.exec(line);
    if (h) {
      section = h[1] as Section;
      if (section === 'app') t.hasApp = true;
      return;
    }
    if (!section) throw new KmodvmError('usage', `${file}:${i + 1}: a line before any [kernel] or [app] header`);
    t[section].push(compileLine(line, section, i + 1, file));
  });
  if (t.kernel.length + t.app.length === 0 && !t.hasApp) throw new KmodvmError('usage', `${file}: no expected lines`);
  return t;
}

/** Kernel log lines without the printk timestamp ("[  310.858620] ") and without the
 *  indentation dmesg gives the continuation lines of a multi-line record. */
export function kernelLines(log: string): string[] {
  return log
    .split('\n')
    .map((l) =>
      l
        .replace(/\r$/, '')
        .replace(/^\[\s*\d+\.\d+\]/, '')
        .trimStart(),
    )
    .filter((l) => l !== '');
}

/**
 * The app's output as a transcript sees it: CRLF line ends as LF, and every
 * other control character but tab shown as text (a NUL as \\0, a lone CR as
 * \\r, others as \\xNN), so a transcript line can say what a byte was. A
 * missing final newline is not a difference.
 */
export function appLines(out: string): string[] {
  const text = out.replace(/\r\n/g, '\n').replace(/\n$/, '');
  if (text === '') return [];
  return text
    .replace(/[\u0000-\u0008\u000b-\u001f\u007f]/g, (ch) =>
      ch === '\0' ? '\\0' : ch === '\r' ? '\\r' : `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`,
    )
    .split('\n');
}

export interface Mismatch {
  section: Section;
  expected: ExpectedLine;
  /** Why: "not found", "captured X, but pid was Y", "extra output". */
  why: string;
  /** Actual lines near where it should have been, with their index. */
  near: { index: number; text: string }[];
}

export interface MatchResult {
  ok: boolean;
  captures: Record<string, string>;
  mismatches: Mismatch[];
}

/** Why a line that would match with fresh captures does not: a capture differs from an earlier line's. */
function clashOf(e: ExpectedLine, line: string, caps: Record<string, string>): string | undefined {
  const fresh = matchTokens(e.tokens, line);
  if (!fresh) return undefined;
  const n = e.names.find((x) => Object.hasOwn(caps, x) && caps[x] !== fresh[x]);
  return n ? `{{${n}}} is ${JSON.stringify(fresh[n])} here but ${JSON.stringify(caps[n])} before` : undefined;
}

const around = (lines: string[], at: number): { index: number; text: string }[] =>
  lines.slice(Math.max(0, at - 2), at + 4).map((text, k) => ({ index: Math.max(0, at - 2) + k, text }));

/** The first-load line a kernel prints only when it checks module signatures (CONFIG_MODULE_SIG, as Debian's do; not the debug kernel). */
export const SIGNATURE_LINE = /module verification failed: signature and\/or required key missing/;

/** Kernel lines printed only by the first out-of-tree module load of a boot. */
export const FIRST_LOAD_ONLY = [/loading out-of-tree module taints kernel/, SIGNATURE_LINE];

/**
 * Matches the actual output. With firstLoad false (the kernel already had an
 * out-of-tree module this boot, as in watch mode) the first-load-only lines
 * are not expected; on a fresh boot (the default) they are required.
 */
export function matchTranscript(
  t: Transcript,
  actual: { kernel: string; app: string },
  o: { firstLoad?: boolean; checksSignatures?: boolean } = {},
): MatchResult {
  const firstLoad = o.firstLoad ?? true;
  const checksSignatures = o.checksSignatures ?? true;
  // No prototype: a capture named {{constructor}} is as good as any other.
  const caps: Record<string, string> = Object.create(null) as Record<string, string>;
  const mismatches: Mismatch[] = [];
  // App first: its PID line is the most direct witness of {{pid}}.
  const app = appLines(actual.app);
  for (let i = 0; t.hasApp !== false && i < Math.max(t.app.length, app.length); i++) {
    const e = t.app[i];
    if (!e) {
      mismatches.push({
        section: 'app',
        expected: { section: 'app', lineNo: 0, text: '(end of expected output)', tokens: [], names: [] },
        why: 'the app printed more lines than expected',
        near: around(app, i),
      });
      break;
    }
    const m = i < app.length ? matchTokens(e.tokens, app[i], caps) : undefined;
    if (!m) {
      const clash = i < app.length ? clashOf(e, app[i], caps) : undefined;
      mismatches.push({
        section: 'app',
        expected: e,
        why: clash ?? (i < app.length ? 'line differs' : 'the app printed fewer lines than expected'),
        near: around(app, i),
      });
      break;
    }
    Object.assign(caps, m);
  }
  const k = kernelLines(actual.kernel);
  let cursor = 0;
  for (const e of t.kernel) {
    if (!firstLoad && FIRST_LOAD_ONLY.some((re) => re.test(e.text))) continue;
    if (!checksSignatures && SIGNATURE_LINE.test(e.text)) continue;
    let found = -1;
    let clash: string | undefined;
    for (let j = cursor; j < k.length; j++) {
      const m = matchTokens(e.tokens, k[j], caps);
      if (!m) {
        if (e.names.some((n) => Object.hasOwn(caps, n))) clash ??= clashOf(e, k[j], caps);
        continue;
      }
      Object.assign(caps, m);
      found = j;
      break;
    }
    if (found < 0) {
      mismatches.push({ section: 'kernel', expected: e, why: clash ?? 'not found after the previous expected line', near: around(k, cursor) });
      break;
    }
    cursor = found + 1;
  }
  return { ok: mismatches.length === 0, captures: caps, mismatches };
}

/** A readable diff of the first mismatch in each section. */
export function formatMismatches(r: MatchResult, file: string): string {
  return r.mismatches
    .map((m) =>
      [
        `${m.section}: expected (${file}:${m.expected.lineNo}): ${m.expected.text}`,
        `  ${m.why}; actual ${m.section === 'kernel' ? 'kernel log' : 'app output'} near there:`,
        ...m.near.map((n) => `  ${String(n.index + 1).padStart(4)} | ${n.text}`),
      ].join('\n'),
    )
    .join('\n');
}
