// One test of a suite on a guest: load the modules, run the command, unload
// them, read the test's state and kernel log, and judge it (judge-test.ts). With
// --update, a transcript that is missing or no longer matches is written
// from the run. What it kept is evidence.json, for kmodvm judge.
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { fileSize, readFrom } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import { tail } from '../core/proc.ts';
import { readInside, readUnder, UnsafePath, writeUnder } from '../core/tree-fs.ts';
import { withoutMarks } from '../guest/step-marks.ts';
import type { Guest } from '../guest/steps.ts';
import { runStep, type StepRecord } from '../guest/steps.ts';
import type { ModuleLayout } from '../verdict/leaks.ts';
import type { CheckResult } from '../verdict/model.ts';
import { type PrintkFormat, printkFormats } from '../verdict/printk-origin.ts';
import { parseTranscript, type Transcript } from '../verdict/transcript.ts';
import type { GuestEnv } from './checks/check.ts';
import { attachGdb, gdbWanted } from './gdb-step.ts';
import { judgeTest } from './judge-test.ts';
import { paramsForNoModule, type SuiteTest, srcPath, TRANSCRIPT_MAX } from './load.ts';
import type { Prepared } from './prepare.ts';
import type { SavedTest } from './rejudge.ts';
import { reportSources } from './sources.ts';
import {
  insmodStep,
  type LoadedModule,
  paramsFor,
  parseStateAfter,
  parseStateBefore,
  rmmodStep,
  runStepSpec,
  fileSafe as safe,
  stateAfter,
  stateBefore,
} from './test-plan.ts';
import type { SelectedTest, SuiteRunInput } from './types.ts';
import { leftOutLine, transcriptDiff, transcriptFromRun } from './update.ts';

export interface OneTest {
  checks: CheckResult[];
  captures?: Record<string, string>;
  untrusted?: string;
  kernelLog: string;
  logBefore: string;
  durationMs: number;
  taintAfter?: number;
}

export async function runOneTest(
  i: SuiteRunInput,
  guest: Guest,
  sel: SelectedTest,
  prep: Pick<Prepared, 'modules' | 'devices' | 'channel'>,
  record: (r: StepRecord) => Promise<void>,
  carried?: { taint?: number },
): Promise<OneTest> {
  const { c, test } = { c: i.c, test: sel.test };
  const modules = testModules(prep.modules, test);
  const t0 = Date.now();
  let b: { taint?: number; dmesg: string } = { taint: carried?.taint, dmesg: '' };
  if (!carried) {
    const pre = await runStep(guest.session, stateBefore(c.timeouts));
    await record(pre);
    b = parseStateBefore(pre.result.stdout);
  }
  const unknown = Object.keys(test.params ?? {}).filter((k) => !modules.some((m) => m.name === k));
  if (unknown.length) return unknownParams(i, test, modules, unknown, b);
  // The test's own devices go in before its modules load, and come out after they are unloaded.
  const plugged = await testDevices(test, prep, 'plug');
  if (plugged.some((x) => !x.ok))
    return { checks: plugged, kernelLog: '', logBefore: b.dmesg, durationMs: Date.now() - t0, taintAfter: b.taint, untrusted: 'a device did not plug' };
  const serialFrom = await fileSize(guest.serialLog);
  await prep.channel?.drain();
  const steps = await loadRunUnload(i, guest, test, { ...prep, modules }, record);
  // What the test asked for with kmodvm-device, in its report; a suite device it unplugged is plugged again for the next.
  const asked = (await prep.channel?.drain()) ?? [];
  const unplugged = [...(await testDevices(test, prep, 'unplug')), ...((await prep.channel?.restore(i.suite.devices.map((d) => d.id))) ?? [])];
  // The debug kernel's KASAN reports a bad write as it happens: no slab walk needed.
  const post = await runStep(
    guest.session,
    stateAfter(
      c.timeouts,
      i.checks.flatMap((k) => k.afterTest ?? []),
    ),
  );
  await record(post);
  const a = parseStateAfter(post.result.stdout);
  const serial = await readFrom(guest.serialLog, serialFrom);
  const { loads, run, unloads, hang, checkSteps } = steps;
  const sources = await reportSources(a.dmesg, modules, (rel) => srcPath(i.suite, rel), steps.layouts).catch((e: Error) => {
    i.log(`note: no source lines for this test's kernel reports: ${e.message}`);
    return undefined;
  });
  const kept = { taintBefore: b.taint, taintAfter: a.taint, pid: a.pid, kernelLog: a.dmesg, serial, hangEvidence: hang, sources };
  const evidence = { loads, run, unloads, ...kept, steps: checkSteps };
  const judged = await judgeAndKeep(i, sel, modules, evidence, a);
  const stuck = unplugged.find((x) => !x.ok)?.name;
  const untrusted = judged.untrusted ?? (stuck && `${stuck} failed`);
  const checks = [...plugged, ...asked, ...judged.checks, ...(steps.gdb ? [steps.gdb] : []), ...unplugged];
  return { ...judged, checks, untrusted, kernelLog: withoutMarks(a.dmesg), logBefore: withoutMarks(b.dmesg), durationMs: Date.now() - t0, taintAfter: a.taint };
}

/** The modules a test loads: the suite's, and a kunit: dir's only in that dir's own test. */
export const testModules = (all: readonly LoadedModule[], test: Pick<SuiteTest, 'kunit'>): LoadedModule[] =>
  all.filter((m) => !m.kunit || m.kunit === test.kunit);

/** Plugs or unplugs the test's own devices (suite/devices-plug.ts). */
async function testDevices(test: SuiteTest, prep: Pick<Prepared, 'devices'>, what: 'plug' | 'unplug'): Promise<CheckResult[]> {
  const own = test.devices?.map((d) => d.id) ?? [];
  if (!own.length || !prep.devices) return [];
  if (what === 'plug') return prep.devices.plug(own);
  const out: CheckResult[] = [];
  for (const id of own) if (prep.devices.plugged().has(id)) out.push(await prep.devices.unplug(id));
  return out;
}

/** A test whose params name a module the suite does not build: a usage failure, before anything is loaded. */
function unknownParams(i: SuiteRunInput, test: SuiteTest, modules: readonly LoadedModule[], unknown: string[], b: { taint?: number; dmesg: string }): OneTest {
  // A guest build names the modules only now; a host build's are checked before the upload (run.ts).
  const e = paramsForNoModule(
    { file: i.suite.file, tests: [test] },
    modules.map((m) => m.name),
  );
  const message = e?.message ?? `tests ${test.name}: params for ${unknown.join(', ')}, which the suite does not build`;
  return {
    checks: [{ name: 'params', ok: false, failure: 'usage', durationMs: 0, message, evidence: e?.hint && `next: ${e.hint}` }],
    kernelLog: '',
    logBefore: b.dmesg,
    durationMs: 0,
    taintAfter: b.taint,
  };
}

/** insmod in order (per-test loading), the run line when every module loaded, rmmod in reverse; a hung run line leaves its evidence. */
async function loadRunUnload(
  i: SuiteRunInput,
  guest: Guest,
  test: SuiteTest,
  prep: Pick<Prepared, 'modules' | 'devices'>,
  record: (r: StepRecord) => Promise<void>,
) {
  const { c } = i;
  const modules = prep.modules;
  const s = guest.session;
  const perTest = i.suite.load === 'per-test';
  const loads: StepRecord[] = [];
  // --gdb TEST: gdb attaches with the loaded modules' symbols (--gdb-before-load: before the loads, their symbols going in at each init); the command runs when gdb lets the guest go; unloading waits for gdb's end.
  const wantGdb = i.gdb && gdbWanted(i.gdb.test, test.name) ? i.gdb : undefined;
  const early = wantGdb?.beforeLoad ? await attachGdb(i, wantGdb, guest, test.name, modules).catch(gdbFailed) : undefined;
  // At a terminal, gdb may hold an insmod as long as its user likes.
  const loadTimeouts = early?.appTimeoutS ? { ...c.timeouts, load: early.appTimeoutS } : c.timeouts;
  for (const m of perTest ? modules : []) {
    const r = await runStep(s, insmodStep(m, paramsFor(m, test.params), loadTimeouts));
    await record(r);
    loads.push(r);
    if (!r.ok) break;
  }
  const loaded = loads.filter((r) => r.ok).length;
  let run: StepRecord | undefined;
  let hang: string | undefined;
  const checkSteps: Record<string, CheckResult[]> = {};
  let gdbResult: CheckResult | undefined;
  if (loaded === loads.length) {
    const gdb = early ?? (wantGdb ? await attachGdb(i, wantGdb, guest, test.name, modules).catch(gdbFailed) : undefined);
    run = await runStep(s, runStepSpec(test.run, gdb?.appTimeoutS ?? test.timeoutS ?? c.timeouts.app));
    await record(run);
    if (run.result.timedOut) hang = await hangEvidence(i, guest);
    gdbResult = await gdb?.finish();
  } else gdbResult = await early?.finish();
  const unloads: StepRecord[] = [];
  const env: GuestEnv = {
    guest,
    runDir: i.runDir,
    test: test.name,
    timeouts: c.timeouts,
    record,
    layouts: [] as ModuleLayout[],
    devices: prep.devices,
    lifecycle: test.lifecycle ?? i.suite.lifecycle,
    params: (m) => paramsFor(m, test.params),
    report: (id, r) => {
      checkSteps[id] = [...(checkSteps[id] ?? []), r];
    },
  };
  for (const m of modules.slice(0, perTest ? loaded : 0).reverse()) {
    for (const k of i.checks) await k.beforeUnload?.(env, m);
    const r = await runStep(s, rmmodStep(m, c.timeouts));
    await record(r);
    unloads.push(r);
  }
  if (unloads.length)
    for (const k of i.checks)
      await k.afterUnload?.(
        env,
        modules,
        unloads.every((r) => r.ok),
      );
  return { loads, run, unloads, hang, layouts: env.layouts, checkSteps, gdb: gdbResult };
}

/** gdb could not be set up (a module without sections, no stub, a busy stub): a failed gdb step; the test runs on without it. */
const gdbFailed = (e: unknown) => {
  if (!(e instanceof KmodvmError)) throw e;
  const failed: CheckResult = { name: 'gdb', ok: false, failure: e.failure, durationMs: 0, message: e.message, evidence: e.hint && `next: ${e.hint}` };
  return { appTimeoutS: undefined, finish: async () => failed };
};

type Evidence = SavedTest['evidence'];

/** Judges the test (with --update, against the transcript it writes), and keeps what kmodvm judge needs in tests/<name>/. */
async function judgeAndKeep(i: SuiteRunInput, sel: SelectedTest, modules: readonly LoadedModule[], evidence: Evidence, a: ReturnType<typeof parseStateAfter>) {
  const test = sel.test;
  const perTest = i.suite.load === 'per-test';
  const run = evidence.run;
  const dir = path.join(i.runDir, 'tests', safe(test.name));
  await mkdir(dir, { recursive: true });
  await Promise.all([
    writeFile(path.join(dir, 'dmesg.log'), a.dmesg),
    writeFile(path.join(dir, 'stdout'), run?.result.stdout ?? ''),
    writeFile(path.join(dir, 'stderr'), run?.result.stderr ?? ''),
  ]);
  const judge = (transcript?: { parsed: Transcript; file: string }): ReturnType<typeof judgeTest> =>
    judgeTest(evidence, { exitCode: test.exitCode, transcript, loadsHere: perTest, kunit: test.kunit }, i.rules, i.checks);
  const existing = sel.transcript && test.transcript ? { parsed: sel.transcript, file: test.transcript.abs } : undefined;
  let judged = judge(existing);
  // --update rewrites a transcript that is missing or no longer matches, as snapshot tools do; one that matches stays as written.
  const stale = !existing || judged.checks.some((x) => x.name === 'transcript' && !x.ok);
  if (i.update && test.transcript && run && !run.result.timedOut && stale) judged = judge(await updateTranscript(i, test, run.result.stdout, a, modules));
  // What kmodvm judge needs to judge this test again, without a VM.
  const transcriptFile = test.transcript && (existing || i.update) ? test.transcript.abs : undefined;
  await writeFile(
    path.join(dir, 'evidence.json'),
    `${JSON.stringify({ evidence, expect: { exitCode: test.exitCode, transcriptFile, loadsHere: perTest, kunit: test.kunit, checks: i.checks.map((k) => k.id), settings: i.suite.checks } } satisfies SavedTest)}\n`,
  );
  return { checks: judged.checks, captures: judged.captures, untrusted: judged.untrusted };
}

/** Where a hung step's sysrq dump is kept: its presence is the host's word that a task dump in the log is kmodvm's own. */
export const SYSRQ_DUMP_FILE = 'sysrq-dump.log';
export const askedForDump = (runDir: string): boolean => existsSync(path.join(runDir, SYSRQ_DUMP_FILE));

/** What a hung command leaves: the guest's task states (sysrq w and t), and the console. */
async function hangEvidence(i: SuiteRunInput, guest: Guest): Promise<string> {
  const dump = await guest.session.exec(['sh', '-c', 'echo w > /proc/sysrq-trigger; echo t > /proc/sysrq-trigger; dmesg'], { timeoutMs: 15_000 });
  await writeFile(path.join(i.runDir, SYSRQ_DUMP_FILE), dump.stdout);
  const console = (await readFile(guest.serialLog, 'utf8').catch(() => '')).split('\n').slice(-15).join('\n');
  return [
    dump.exitCode === 0
      ? `sysrq w/t task dump (full: sysrq-dump.log), last lines:\n${tail(dump.stdout, 40)}`
      : `the guest did not answer a sysrq request (${dump.reason})`,
    `serial console, last lines:\n${console}`,
  ].join('\n');
}

async function updateTranscript(
  i: SuiteRunInput,
  test: SuiteTest,
  app: string,
  a: { pid?: string; dmesg: string },
  modules: readonly LoadedModule[],
): Promise<{ parsed: Transcript; file: string }> {
  const file = test.transcript!.abs;
  // The suite names the file: it is read and written only inside the suite (a --transcript given on the command line: its own directory).
  const root = i.suite.mounts ? path.dirname(file) : i.suite.root;
  const old = await readUnder(root, file, TRANSCRIPT_MAX).then(String, () => undefined);
  const formats = await moduleFormats(modules);
  const { text, leftOut } = transcriptFromRun({
    app,
    kernelLog: withoutMarks(a.dmesg),
    modules: modules.map((m) => m.name),
    formats: formats.formats,
    shellPid: a.pid,
    header: `Expected transcript of test ${test.name}, written by kmodvm --update.\nCheck it, and put placeholders where the output varies (docs/transcript.md).`,
  });
  const real = await writeUnder(root, file, text).catch((e) => {
    if (!(e instanceof UnsafePath)) throw e;
    throw new KmodvmError('usage', `--update does not write ${test.transcript!.rel}: ${e.message}`, {
      hint: `an expected transcript must be a regular file inside the suite (${root}); remove the link, or point transcript: elsewhere`,
    });
  });
  const where = real === file ? test.transcript!.rel : `${test.transcript!.rel} (${real})`;
  const diff = transcriptDiff(test.transcript!.rel, old, text);
  i.log(diff ? `update: wrote ${where}\n${diff}` : `update: ${where} unchanged`);
  i.log(leftOutLine(leftOut, formats.without));
  return { parsed: parseTranscript(text, file), file };
}

/** The printk formats of the modules whose host-built .ko is at hand (a regular file of our tree, bounded), and those without one. */
async function moduleFormats(modules: readonly LoadedModule[]): Promise<{ formats: PrintkFormat[]; without: string[] }> {
  const formats: PrintkFormat[] = [];
  const without: string[] = [];
  for (const m of modules) {
    const ko = m.host && (await readInside(m.host.tree, m.host.ko, KO_MAX).catch(() => undefined));
    if (ko) formats.push(...printkFormats(ko));
    else without.push(m.name);
  }
  return { formats, without };
}

const KO_MAX = 256 * 2 ** 20;
