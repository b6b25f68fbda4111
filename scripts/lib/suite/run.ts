// The one test-on-a-guest path: a suite's tests on an open SSH session,
// one after another, for vm:test (a fresh or resumed guest, or --reuse),
// vm:watch, lab:check and bench alike. A failed test does not stop the next;
// a test after which the kernel cannot be trusted (a splat, a new taint
// flag, a failed rmmod, a hang) hands the next test a fresh guest.
import { mkdir, open, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { tail } from '../core/proc.ts';
import { worstOf, type Check, type TestReport } from '../verdict/report.ts';
export type { TestReport } from '../verdict/report.ts';
import type { CompiledRules } from '../verdict/splat.ts';
import type { SshSession } from '../guest/ssh.ts';
import { recordStep, runStep, type StepRecord } from '../guest/steps.ts';
import { parseTranscript, type Transcript } from '../verdict/transcript.ts';
import { buildChecks, type SuiteHostBuild } from './host-build.ts';
import { judgeTest } from './judge.ts';
import type { SavedTest } from './rejudge.ts';
import type { Suite, SuiteTest } from './load.ts';
import { prepareGuest, type Prepared } from './prepare.ts';
import { fileSafe as safe, insmodStep, paramsFor, parseStateAfter, parseStateBefore, rmmodStep, runStepSpec, stateAfter, stateBefore, type LoadedModule } from './test-plan.ts';
import { transcriptDiff, transcriptFromRun } from './update.ts';

export interface SelectedTest { test: SuiteTest; transcript?: Transcript }
export interface Guest { session: SshSession; serialLog: string }

export interface SuiteRunInput {
  c: Config; suite: Suite; tests: readonly SelectedTest[]; files: readonly string[];
  guest: Guest; runDir: string; kver: string; rules: CompiledRules;
  /** The host build, started while the guest came up; none: build in the guest. */
  hostBuild?: Promise<SuiteHostBuild>;
  guestRecords?: { dir: string; replay: boolean };
  /** Under KVM a guest build is cheap: a failed host build is done again in the guest. */
  guestFallback?: boolean;
  reuse?: boolean;
  /** A fresh guest in place of one the last test left untrusted. */
  fresh?: (why: string) => Promise<Guest>;
  update?: boolean;
  log: (l: string) => void;
}

export interface SuiteRunResult { before: Check[]; tests: TestReport[]; after: Check[]; kernelLog: string; untrusted?: string; guest: Guest }

const fileSize = async (f: string): Promise<number> => {
  const fh = await open(f, 'r').catch(() => undefined);
  if (!fh) return 0;
  try { return (await fh.stat()).size; } finally { await fh.close(); }
};
const readFrom = async (f: string, at: number): Promise<string> => (await readFile(f).catch(() => Buffer.alloc(0))).subarray(at).toString('utf8');

/** The build: the host's result as checks; under KVM a failed host build goes to the guest. */
async function hostResult(i: SuiteRunInput): Promise<{ checks: Check[]; host?: SuiteHostBuild; failed: boolean }> {
  if (!i.hostBuild) return { checks: [], failed: false };
  const hb = await i.hostBuild;
  await writeFile(path.join(i.runDir, 'host-build.log'), [`tree: ${hb.tree}`, ...hb.dirs.map((d) => `== ${d.kind} ${d.dir}\n${d.build.output}`)].join('\n'));
  const checks = buildChecks(hb);
  if (hb.ok) return { checks, host: hb, failed: false };
  if (i.guestFallback) {
    i.log('build: the host build failed; building in the guest instead (KVM makes that cheap)');
    return { checks: checks.map((x) => (x.ok ? x : { ...x, name: `${x.name}-host`, ok: true, failure: undefined, message: 'failed on the host; built in the guest instead' })), failed: false };
  }
  return { checks, failed: true };
}

export async function runSuite(i: SuiteRunInput): Promise<SuiteRunResult> {
  const { c } = i;
  let guest = i.guest;
  let n = 0;
  const record = async (prefix: string, r: StepRecord): Promise<void> => recordStep(i.runDir, ++n, { ...r, name: safe(prefix ? `${prefix}-${r.name}` : r.name) });
  guest.session.warmUpload();
  void guest.session.warmShells(2);
  await mkdir(path.join(i.runDir, 'steps'), { recursive: true });
  const built = await hostResult(i);
  const before: Check[] = [...built.checks];
  const res: SuiteRunResult = { before, tests: [], after: [], kernelLog: '', guest };
  if (built.failed) return res;
  const prepare = async (reuse: boolean): Promise<Prepared> => {
    const p = await prepareGuest({ c, suite: i.suite, session: guest.session, files: i.files, kver: i.kver, host: built.host, guestRecords: i.guestRecords, reuse, log: i.log });
    for (const r of p.records) await record('', r);
    return p;
  };
  let prep = await prepare(Boolean(i.reuse));
  before.push(...prep.checks);
  if (!prep.ok) return res;
  let untrusted: string | undefined;
  // The last test's state after is the next one's state before, on the same guest.
  let carried: { taint?: number } | undefined;
  for (const sel of i.tests) {
    let freshGuest: string | undefined;
    if (untrusted && i.fresh) {
      i.log(`test ${sel.test.name}: a fresh guest first (${untrusted})`);
      freshGuest = untrusted;
      guest = res.guest = await i.fresh(untrusted);
      carried = undefined;
      prep = await prepare(false);
      if (!prep.ok) {
        res.tests.push(report(sel.test.name, prep.checks.filter((x) => !x.ok), 0, freshGuest));
        untrusted = 'the fresh guest could not be prepared';
        continue;
      }
    }
    i.log(`test ${sel.test.name}`);
    const t = await runOneTest(i, guest, sel, prep.modules, (r) => record(sel.test.name, r), carried);
    res.kernelLog += t.logBefore + t.kernelLog;
    untrusted = t.untrusted;
    carried = t.taintAfter === undefined ? undefined : { taint: t.taintAfter };
    res.tests.push({ ...report(sel.test.name, t.checks, t.durationMs, freshGuest), captures: t.captures });
  }
  if (i.suite.load === 'once' && !untrusted) {
    for (const m of [...prep.modules].reverse()) {
      const r = await runStep(guest.session, rmmodStep(m, c.timeouts));
      await record('', r);
      res.after.push({ name: r.name, ok: r.ok, failure: r.failure, durationMs: r.result.durationMs, message: r.message, evidence: r.ok ? undefined : tail(r.result.stderr, 10) });
      if (!r.ok) untrusted = `${r.name} failed`;
    }
  }
  const last = await guest.session.exec(['dmesg', '-c'], { timeoutMs: c.timeouts.command * 1000 }).catch(() => undefined);
  res.kernelLog += last?.stdout ?? '';
  res.untrusted = untrusted;
  await writeFile(path.join(i.runDir, 'dmesg.log'), res.kernelLog);
  return res;
}

function report(name: string, checks: Check[], durationMs: number, freshGuest?: string): TestReport {
  const w = worstOf(checks);
  return { name, ok: !w, failure: w, durationMs, checks, freshGuest };
}

interface OneTest { checks: Check[]; captures?: Record<string, string>; untrusted?: string; kernelLog: string; logBefore: string; durationMs: number; taintAfter?: number }

async function runOneTest(i: SuiteRunInput, guest: Guest, sel: SelectedTest, modules: readonly LoadedModule[], record: (r: StepRecord) => Promise<void>, carried?: { taint?: number }): Promise<OneTest> {
  const { c, test } = { c: i.c, test: sel.test };
  const t0 = Date.now();
  const s = guest.session;
  let b: { taint?: number; dmesg: string } = { taint: carried?.taint, dmesg: '' };
  if (!carried) {
    const pre = await runStep(s, stateBefore(c.timeouts));
    await record(pre);
    b = parseStateBefore(pre.result.stdout);
  }
  const serialFrom = await fileSize(guest.serialLog);
  const perTest = i.suite.load === 'per-test';
  const unknown = Object.keys(test.params ?? {}).filter((k) => !modules.some((m) => m.name === k));
  if (unknown.length) {
    return { checks: [{ name: 'params', ok: false, failure: 'usage', durationMs: 0, message: `tests ${test.name}: params for ${unknown.join(', ')}, which the suite does not build (it builds ${modules.map((m) => m.name).join(', ')})`, evidence: `in ${i.suite.file}` }], kernelLog: '', logBefore: b.dmesg, durationMs: 0, taintAfter: b.taint };
  }
  const loads: StepRecord[] = [];
  for (const m of perTest ? modules : []) {
    const r = await runStep(s, insmodStep(m, paramsFor(m, test.params), c.timeouts));
    await record(r);
    loads.push(r);
    if (!r.ok) break;
  }
  const loaded = loads.filter((r) => r.ok).length;
  let run: StepRecord | undefined;
  let hang: string | undefined;
  if (loaded === loads.length) {
    run = await runStep(s, runStepSpec(test.run, test.timeoutS ?? c.timeouts.app));
    await record(run);
    if (run.result.timedOut) hang = await hangEvidence(i, guest);
  }
  const unloads: StepRecord[] = [];
  for (const m of modules.slice(0, perTest ? loaded : 0).reverse()) {
    const r = await runStep(s, rmmodStep(m, c.timeouts));
    await record(r);
    unloads.push(r);
  }
  const post = await runStep(s, stateAfter(c.timeouts));
  await record(post);
  const a = parseStateAfter(post.result.stdout);
  const serial = await readFrom(guest.serialLog, serialFrom);
  const dir = path.join(i.runDir, 'tests', safe(test.name));
  await mkdir(dir, { recursive: true });
  await Promise.all([writeFile(path.join(dir, 'dmesg.log'), a.dmesg), writeFile(path.join(dir, 'stdout'), run?.result.stdout ?? ''), writeFile(path.join(dir, 'stderr'), run?.result.stderr ?? '')]);
  const evidence = { loads, run, unloads, taintBefore: b.taint, taintAfter: a.taint, pid: a.pid, kernelLog: a.dmesg, serial, hangEvidence: hang };
  const judge = (transcript?: { parsed: Transcript; file: string }): ReturnType<typeof judgeTest> => judgeTest(evidence, { exitCode: test.exitCode, transcript, loadsHere: perTest }, i.rules);
  const keep = (transcriptFile?: string): Promise<void> => writeFile(path.join(dir, 'evidence.json'), JSON.stringify({ evidence, expect: { exitCode: test.exitCode, transcriptFile, loadsHere: perTest } } satisfies SavedTest) + '\n');
  const existing = sel.transcript && test.transcript ? { parsed: sel.transcript, file: test.transcript.abs } : undefined;
  let judged = judge(existing);
  // --update rewrites a transcript that is missing or no longer matches, as snapshot tools do; one that matches stays as written.
  const stale = !existing || judged.checks.some((x) => x.name === 'transcript' && !x.ok);
  if (i.update && test.transcript && run && !run.result.timedOut && stale) judged = judge(await updateTranscript(i, test, run.result.stdout, a, modules));
  // What kmodvm judge needs to judge this test again, without a VM.
  await keep(test.transcript && (existing || i.update) ? test.transcript.abs : undefined);
  return { checks: judged.checks, captures: judged.captures, untrusted: judged.untrusted, kernelLog: a.dmesg, logBefore: b.dmesg, durationMs: Date.now() - t0, taintAfter: a.taint };
}

/** What a hung command leaves: the guest's task states (sysrq w and t), and the console. */
async function hangEvidence(i: SuiteRunInput, guest: Guest): Promise<string> {
  const dump = await guest.session.exec(['sh', '-c', 'echo w > /proc/sysrq-trigger; echo t > /proc/sysrq-trigger; dmesg'], { timeoutMs: 15_000 });
  await writeFile(path.join(i.runDir, 'sysrq-dump.log'), dump.stdout);
  const console = (await readFile(guest.serialLog, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
  return [dump.exitCode === 0 ? `sysrq w/t task dump (full: sysrq-dump.log), last lines:\n${tail(dump.stdout, 40)}` : `the guest did not answer a sysrq request (${dump.reason})`, `serial console, last lines:\n${console}`].join('\n');
}

async function updateTranscript(i: SuiteRunInput, test: SuiteTest, app: string, a: { pid?: string; dmesg: string }, modules: readonly LoadedModule[]): Promise<{ parsed: Transcript; file: string }> {
  const file = test.transcript!.abs;
  const old = await readFile(file, 'utf8').catch(() => undefined);
  const text = transcriptFromRun({ app, kernelLog: a.dmesg, modules: modules.map((m) => m.name), shellPid: a.pid, header: `Expected transcript of test ${test.name}, written by kmodvm --update.\nCheck it, and put placeholders where the output varies (docs/transcript.md).` });
  await mkdir(path.dirname(file), { recursive: true });
  await writeFile(file, text);
  const diff = transcriptDiff(test.transcript!.rel, old, text);
  i.log(diff ? `update: wrote ${test.transcript!.rel}\n${diff}` : `update: ${test.transcript!.rel} unchanged`);
  return { parsed: parseTranscript(text, file), file };
}
