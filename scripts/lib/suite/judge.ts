// The verdict of one suite test, as a pure function of what the guest
// returned: the step records, the test's kernel log (and serial console),
// the taint flags around it and the expected transcript. Re-judging a saved
// run is calling it again with the same records.
import { tail } from '../core/proc.ts';
import type { StepRecord } from '../guest/steps.ts';
import { splitInjections } from '../verdict/fail-nth.ts';
import { firstSource, type Sources } from '../verdict/frames.ts';
import type { CheckResult } from '../verdict/model.ts';
import { type CompiledRules, findSplats, formatSplat, unexpectedTaint } from '../verdict/splat.ts';
import { formatMismatches, matchTranscript, type Transcript } from '../verdict/transcript.ts';

/** Taint flag O: an out-of-tree module was loaded this boot. */
export const TAINT_OOT = 1 << 12;
/** Taint flag E: an unsigned module was loaded by a kernel that checks signatures. */
export const TAINT_UNSIGNED = 1 << 13;

export interface TestEvidence {
  /** insmod records, in load order (a load stops at the first failure). */
  loads: StepRecord[];
  run?: StepRecord;
  /** rmmod records, in unload order. */
  unloads: StepRecord[];
  taintBefore?: number;
  taintAfter?: number;
  pid?: string;
  /** The kernel log from before the test's first insmod to after its last rmmod. */
  kernelLog: string;
  /** The serial console over the same time. */
  serial: string;
  /** Evidence gathered when the command hung (task dump, console tail). */
  hangEvidence?: string;
  /** The source lines of the modules' frames in the kernel log (suite/sources.ts). */
  sources?: Sources;
}

export interface TestExpect {
  exitCode: number;
  transcript?: { parsed: Transcript; file: string };
  /** The modules were loaded by this test, so first-load lines may be expected. */
  loadsHere: boolean;
}

export interface JudgedTest {
  checks: CheckResult[];
  captures?: Record<string, string>;
  firstLoad: boolean;
  untrusted?: string;
}

const stepCheck = (r: StepRecord, kernelLog: string): CheckResult => ({
  name: r.name,
  ok: r.ok,
  failure: r.failure,
  durationMs: r.result.durationMs,
  message: r.message,
  ...(r.ok ? {} : { evidence: `${tail(`${r.result.stdout}\n${r.result.stderr}`, 10)}\nkernel log of this test, last lines:\n${tail(kernelLog, 15)}` }),
});

function runCheck(r: StepRecord, want: number, hang?: string): CheckResult {
  const base = { name: 'run', durationMs: r.result.durationMs };
  const out = (): string => `stdout, last lines:\n${tail(r.result.stdout, 12)}\nstderr, last lines:\n${tail(r.result.stderr, 12)}`;
  if (r.result.timedOut)
    return { ...base, ok: false, failure: 'timeout', message: `the command ${r.result.reason}`, evidence: [out(), hang].filter(Boolean).join('\n') };
  if (r.result.exitCode === undefined) return { ...base, ok: false, failure: 'app', message: `the command ${r.result.reason}`, evidence: out() };
  if (r.result.exitCode !== want) return { ...base, ok: false, failure: 'app', message: `exited ${r.result.exitCode}, expected ${want}`, evidence: out() };
  return { ...base, ok: true, message: `exited ${want}` };
}

export function judgeTest(e: TestEvidence, x: TestExpect, rules: CompiledRules): JudgedTest {
  const checks: CheckResult[] = e.loads.map((r) => stepCheck(r, e.kernelLog));
  const firstLoad = x.loadsHere && (e.taintBefore === undefined || (e.taintBefore & TAINT_OOT) === 0);
  let captures: Record<string, string> | undefined;
  if (e.run) checks.push(runCheck(e.run, x.exitCode, e.hangEvidence));
  checks.push(...e.unloads.map((r) => stepCheck(r, e.kernelLog)));
  if (e.run && !e.run.result.timedOut && x.transcript) {
    // Taint E (an unsigned module was loaded) is set only by a kernel that checks signatures; one that does not never prints the signature line.
    const checksSignatures = e.taintAfter === undefined || (e.taintAfter & TAINT_UNSIGNED) !== 0;
    const m = matchTranscript(x.transcript.parsed, { kernel: e.kernelLog, app: e.run.result.stdout }, { firstLoad, checksSignatures });
    captures = m.captures;
    checks.push(
      m.ok
        ? {
            name: 'transcript',
            ok: true,
            durationMs: 0,
            message: `${m.captures.pid ? `pid ${m.captures.pid}` : 'match'}${firstLoad || !x.loadsHere ? '' : ' (an out-of-tree module was loaded earlier this boot: first-load lines not expected)'}`,
          }
        : {
            name: 'transcript',
            ok: false,
            failure: 'transcript',
            durationMs: 0,
            message: 'output differs from the expected transcript',
            evidence: formatMismatches(m, x.transcript.file),
            annotations: m.mismatches.map((mm) => ({
              file: x.transcript!.file,
              line: mm.expected.lineNo,
              message: `${mm.section}: ${mm.why}: ${mm.expected.text}`,
            })),
          },
    );
  }
  let untrusted: string | undefined;
  if (e.taintBefore !== undefined && e.taintAfter !== undefined) {
    const extra = unexpectedTaint(e.taintBefore, e.taintAfter);
    if (extra.length) untrusted = `new taint flags ${extra.join('')}`;
    checks.push(
      extra.length
        ? {
            name: 'taint',
            ok: false,
            failure: 'splat',
            durationMs: 0,
            message: `new taint flags ${extra.join('')}`,
            evidence: `tainted ${e.taintBefore} -> ${e.taintAfter}`,
          }
        : { name: 'taint', ok: true, durationMs: 0, message: `tainted ${e.taintAfter}` },
    );
  }
  // A hung step is what makes kmodvm ask the guest for a sysrq task dump (run-test.ts): only then is one in the log ours.
  const hung = e.run?.result.timedOut || [...e.loads, ...e.unloads].some((r) => r.result.timedOut);
  const splat = noSplatCheck(e.kernelLog, e.serial, rules, e.sources, { ownDump: hung });
  // A leak fails the test but leaves the kernel as sound as it was: the next test needs no fresh guest.
  if (!splat.ok && !LEAK_KINDS.includes(splat.splatId ?? '')) untrusted ??= splat.message?.trim();
  checks.push(splat);
  const stuck = e.unloads.find((r) => !r.ok);
  untrusted ??= hung ? 'a step hung' : stuck ? `${stuck.name} failed` : undefined;
  return { checks, captures, firstLoad, untrusted };
}

/** The run-wide splat check: the whole kernel log and the serial console. */
/** The run-wide splat check of a --fail-nth run: the injections' own reports (and the allocator's warnings after them) on the console are what it asked for. */
export function failNthSplatCheck(kernelLog: string, serial: string, rules: CompiledRules, _sources?: Sources, o: { ownDump?: boolean } = {}): CheckResult {
  return noSplatCheck(splitInjections(kernelLog).rest, splitInjections(serial).rest, rules, undefined, o);
}

/** The splat kinds of a leak found at unload: the test fails, the kernel stays trusted. */
export const LEAK_KINDS = ['memcheck-leak', 'kmemleak'];
/** How many log lines after a splat's first the source lookup reads: a kernel BUG's call trace follows its register dump. */
const TRACE_LINES = 80;

export function noSplatCheck(kernelLog: string, serial: string, rules: CompiledRules, sources?: Sources, o: { ownDump?: boolean } = {}): CheckResult {
  const splats = [...findSplats(kernelLog, rules, 'dmesg', o), ...findSplats(serial, rules, 'serial.log', o)];
  if (!splats.length) return { name: 'no-splat', ok: true, durationMs: 0 };
  const s = splats[0];
  const from = s.source === 'dmesg' ? kernelLog : serial;
  const at = sources && firstSource(from.split('\n').slice(s.lineNo - 1, s.lineNo - 1 + TRACE_LINES), sources);
  return {
    splatId: s.id,
    name: 'no-splat',
    ok: false,
    failure: 'splat',
    durationMs: 0,
    message: `${s.id}: ${s.line}${at ? ` (${at.source.rel}:${at.source.line})` : ''}`,
    evidence: `${formatSplat(s)}${at ? `\nsource: ${at.source.rel}:${at.source.line} (${at.source.site ? `${at.frame}: ${at.source.site}, unloaded` : at.frame})` : ''}`,
    ...(at ? { annotations: [{ file: at.source.file, line: at.source.line, message: `${s.id}: ${s.line}` }] } : {}),
  };
}
