// KUnit's results in a kernel log: the KTAP a module's suites print when it
// loads (Documentation/dev-tools/ktap.rst), read as kunit_tool's parser
// reads it, one line at a time. A suite is a `# Subtest: NAME` one level
// in, its cases are the results at that level, and the lines a case prints
// before its result (an expectation's "EXPECTATION FAILED at file:line" and
// what follows) are its message. A suite that planned more cases than it
// reported (the module crashed mid-suite) says so.

export interface KunitCase {
  suite: string;
  name: string;
  ok: boolean;
  skipped?: string;
  /** What the case printed before its result: the failed expectations, in order. */
  message: string[];
  /** The first failed expectation's place, as the module's build wrote it. */
  at?: { file: string; line: number };
}

export interface KunitSuite {
  name: string;
  planned?: number;
  /** The suite's own result line; absent when the log ends inside the suite. */
  ok?: boolean;
  cases: KunitCase[];
}

/** A kernel log line without its [ seconds] stamp, its indentation kept. */
const unstamped = (l: string): string => l.replace(/^\[\s*\d+\.\d+\] ?/, '');
const RESULT = /^(\s*)(ok|not ok) \d+ (?:- )?(.*?)(?:\s+#\s*(SKIP|TODO)\b\s*(.*))?$/;
const SUBTEST = /^(\s*)# Subtest: (\S+)/;
const PLAN = /^(\s*)1\.\.(\d+)\s*$/;
const AT = /(?:EXPECTATION|ASSERTION) FAILED at (\S+?):(\d+)/;
/** KUnit's own summary lines: not a case's message. */
const SUMMARY = /^# (?:\S+: pass:\d+|Totals: pass:\d+)/;
/** A case's message keeps at most this many lines (an expectation in a loop may print thousands). */
const MESSAGE_MAX = 40;

const indentOf = (s: string): number => s.length;

/** The KUnit suites a kernel log holds, in the order they ran. */
export function parseKtap(log: string): KunitSuite[] {
  const suites: KunitSuite[] = [];
  let cur: { suite: KunitSuite; indent: number } | undefined;
  let pending: string[] = [];
  let nestedAt: number | undefined;
  for (const raw of log.split('\n')) {
    const l = unstamped(raw).replace(/\s+$/, '');
    const sub = SUBTEST.exec(l);
    if (sub) {
      const indent = indentOf(sub[1]);
      // A parameterised case's own subtest: its results are its parameters, its case result comes one level out.
      if (cur && indent > cur.indent) nestedAt = indent;
      else {
        cur = { suite: { name: sub[2], cases: [] }, indent };
        suites.push(cur.suite);
        pending = [];
        nestedAt = undefined;
      }
      continue;
    }
    if (!cur) continue;
    const plan = PLAN.exec(l);
    if (plan) {
      if (indentOf(plan[1]) === cur.indent && cur.suite.planned === undefined) cur.suite.planned = Number(plan[2]);
      continue;
    }
    const r = RESULT.exec(l);
    if (r) {
      const indent = indentOf(r[1]);
      if (nestedAt !== undefined && indent >= nestedAt) continue;
      if (indent === cur.indent) {
        nestedAt = undefined;
        cur.suite.cases.push(caseOf(cur.suite.name, r, pending));
        pending = [];
      } else if (indent < cur.indent) {
        cur.suite.ok = r[2] === 'ok';
        cur = undefined;
      }
      continue;
    }
    const text = l.trim();
    if (text.startsWith('KTAP version') || SUMMARY.test(text)) continue;
    if (text && pending.length < MESSAGE_MAX) pending.push(text.replace(/^# /, ''));
  }
  return suites;
}

function caseOf(suite: string, r: RegExpExecArray, pending: string[]): KunitCase {
  const ok = r[2] === 'ok';
  const c: KunitCase = { suite, name: r[3].trim(), ok, message: ok ? [] : pending };
  if (r[4] === 'SKIP') c.skipped = r[5]?.trim() || 'skipped';
  const at = pending.map((p) => AT.exec(p)).find(Boolean);
  if (!ok && at) c.at = { file: at[1], line: Number(at[2]) };
  return c;
}

/** The cases a suite planned and never reported (the module stopped mid-suite). */
export const missingCases = (s: KunitSuite): number => (s.planned === undefined ? 0 : Math.max(0, s.planned - s.cases.length));
