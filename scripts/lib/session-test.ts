// The test steps on an open SSH session: upload, build, load, run, unload,
// then the transcript and taint checks. Shared by vm:test (fresh boot or
// --reuse) and vm:watch. It does not boot or power off anything.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from './config.ts';
import { buildModuleInGuest, guestBuildPlan } from './guest-kbuild.ts';
import type { HostBuild } from './hostbuild.ts';
import { tail } from './proc.ts';
import type { Check } from './report.ts';
import { unexpectedTaint } from './splat.ts';
import type { SshSession, UploadPart } from './ssh.ts';
import { compilerDiagnostics, GUEST_WORK, mapGuestPaths, recordStep, runStep, testPlan, type StepRecord, type StepSpec } from './steps.ts';
import { formatMismatches, matchTranscript, type Transcript } from './transcript.ts';

export const MODULE = 'netlink_simple_intf';
export const APP = 'netlink_userapp';
/** Taint flag O: an out-of-tree module was loaded this boot. */
const TAINT_OOT = 1 << 12;

/** Files the upload skips: build products. */
export const isBuildProduct = (rel: string): boolean =>
  /(^|\/)(\.[^/]*\.cmd|.*\.o|.*\.ko|.*\.mod|.*\.mod\.c|modules\.order|Module\.symvers|\.tmp_versions)$/.test(rel) || rel === APP;

export interface SessionTestInput {
  c: Config;
  session: SshSession;
  runDir: string;
  moduleDir: string;
  appDir: string;
  transcript: Transcript;
  transcriptFile: string;
  /** The module built on the host, if --build host. */
  hostBuild?: Promise<HostBuild>;
  /** Where the host build happens. Default <runDir>/build/kernel-module. */
  hostBuildDir?: string;
  /** The app built on the host (static), if --build host. */
  hostApp?: Promise<HostBuild>;
  /** Where the app's host build happens. Default <runDir>/build/userapp. */
  hostAppDir?: string;
  /** Under KVM a guest build is cheap: when a host build fails, build that part in the guest instead. */
  guestFallback?: boolean;
  /** Records of guest kbuilds for this image (guest-kbuild.ts), and whether to replay them. */
  guestRecords?: { dir: string; replay: boolean };
  /** On a VM that already ran tests: unload a leftover module and clear the kernel log first. */
  reuse?: boolean;
  serialTail: () => Promise<string>;
  log: (l: string) => void;
}

export interface SessionTestResult { checks: Check[]; captures?: Record<string, string>; finalDmesg: string; records: Map<string, StepRecord> }

const cleanupStep = (c: Config): StepSpec => ({
  name: 'unload-old', argv: ['sh', '-c', `rmmod ${MODULE} 2>/dev/null; dmesg -C`], timeoutMs: c.timeouts.load * 1000, failure: 'load',
});

async function evidenceFor(i: SessionTestInput, spec: StepSpec, rec: StepRecord): Promise<Pick<Check, 'evidence' | 'annotations'>> {
  const app = spec.name === 'build-app';
  const out = mapGuestPaths(`${rec.result.stdout}\n${rec.result.stderr}`, `${GUEST_WORK}/${app ? 'userapp' : 'kernel-module'}`, app ? i.appDir : i.moduleDir);
  if (rec.failure === 'build') {
    const diags = compilerDiagnostics(out).filter((d) => d.severity !== 'warning');
    return {
      evidence: diags.length ? diags.map((d) => `${d.file}:${d.line}${d.col ? `:${d.col}` : ''}: ${d.severity}: ${d.message}`).join('\n') : tail(out, 25),
      annotations: diags.map((d) => ({ file: d.file, line: d.line, col: d.col, message: `${d.severity}: ${d.message}` })),
    };
  }
  if (rec.failure === 'load') {
    const dm = await i.session.exec(['dmesg'], { timeoutMs: i.c.timeouts.command * 1000 });
    return { evidence: `${tail(out, 10)}\nkernel log, last lines:\n${tail(dm.stdout, 15)}` };
  }
  if (rec.failure === 'timeout') {
    // Evidence before the VM is killed: blocked tasks and all task states, over a second channel.
    const dump = await i.session.exec(['sh', '-c', 'echo w > /proc/sysrq-trigger; echo t > /proc/sysrq-trigger; dmesg'], { timeoutMs: 15_000 });
    await writeFile(path.join(i.runDir, 'sysrq-dump.log'), dump.stdout);
    return {
      evidence: [`output so far:\n${tail(out, 10)}`,
        dump.exitCode === 0 ? `sysrq w/t task dump (full: sysrq-dump.log), last lines:\n${tail(dump.stdout, 40)}` : `the guest did not answer a sysrq request (${dump.reason})`,
        `serial console, last lines:\n${await i.serialTail()}`].join('\n'),
    };
  }
  return { evidence: tail(out, 25) };
}

/** The upload of a host-built file: the build's guest copy when it made one, else `name` in `dir`. */
function fromHost(hb: HostBuild | undefined, dir: string, name: string): UploadPart {
  const file = hb?.upload ?? path.join(dir, name);
  return { localDir: path.dirname(file), sub: 'kernel-module', skip: (rel) => rel !== path.basename(file) };
}

export async function testOnSession(i: SessionTestInput): Promise<SessionTestResult> {
  const { c, session, runDir } = i;
  const checks: Check[] = [];
  const records = new Map<string, StepRecord>();
  const result = (): SessionTestResult => ({ checks, records, finalDmesg: '' });
  // Host builds (started while the guest booted): a failure ends the run, or,
  // under KVM, sends that part to the guest, whose verdict is authoritative.
  const built = new Map<string, HostBuild>();
  const onHost = async (name: string, what: string, p: Promise<HostBuild> | undefined, logFile: string): Promise<'host' | 'guest' | 'failed'> => {
    if (!p) return 'guest';
    const hb = await p;
    built.set(name, hb);
    await writeFile(path.join(runDir, logFile), hb.output);
    if (hb.ok) { checks.push({ name, ok: true, durationMs: hb.durationMs, message: 'on the host' }); return 'host'; }
    if (i.guestFallback) {
      i.log(`${name}: the host build failed; building in the guest instead (KVM makes that cheap)`);
      checks.push({ name: `${name}-host`, ok: true, durationMs: hb.durationMs, message: 'failed on the host; built in the guest instead', evidence: hb.evidence });
      return 'guest';
    }
    checks.push({ name, ok: false, failure: 'build', durationMs: hb.durationMs, message: `the ${what} does not build (on the host)`, evidence: hb.evidence && `${hb.evidence}\nnext: fix the code, or try --build guest to build it inside the VM`, annotations: hb.annotations });
    return 'failed';
  };
  // Steps that need nothing from the build (unloading a leftover module, the taint
  // before) run while the host builds: the guest is idle meanwhile.
  const planOf = (modWhere: string, appWhere: string): StepSpec[] => testPlan({ moduleName: MODULE, appName: APP, timeouts: c.timeouts, buildModuleInGuest: modWhere === 'guest', buildAppInGuest: appWhere === 'guest' });
  const early: StepSpec[] = [...(i.reuse ? [cleanupStep(c)] : []), planOf('host', 'host').find((x) => x.name === 'taint-before')!];
  // Opened while the host builds: the guest's tar for the upload, and two kept
  // shells (the kernel log and the taint are read at the same time after the unload).
  session.warmUpload();
  void session.warmShells(2);
  // They also run at the same time as each other: taint flags are never cleared,
  // so the taint read while a leftover module unloads is the same.
  const earlyRun = Promise.all(early.map(async (spec): Promise<[StepSpec, StepRecord]> => [spec, await runStep(session, spec)]));
  const modWhere = await onHost('build-module', 'module', i.hostBuild, 'host-build.log');
  const appWhere = modWhere === 'failed' ? 'failed' : await onHost('build-app', 'app', i.hostApp, 'host-build-app.log');
  if (modWhere === 'failed' || appWhere === 'failed') { await earlyRun; return result(); }
  const gk = modWhere === 'guest' && i.guestRecords ? await guestBuildPlan(i.guestRecords.dir, i.moduleDir, i.guestRecords.replay) : undefined;
  const t0 = Date.now();
  // On a kept instance the guest has the last cycle's files: send only what changed.
  const sent = await session.uploadTrees(GUEST_WORK, [
    modWhere === 'host'
      ? fromHost(built.get('build-module'), i.hostBuildDir ?? path.join(runDir, 'build', 'kernel-module'), `${MODULE}.ko`)
      : { localDir: i.moduleDir, sub: 'kernel-module', skip: isBuildProduct },
    appWhere === 'host'
      ? { localDir: i.hostAppDir ?? path.join(runDir, 'build', 'userapp'), sub: 'userapp', skip: (rel) => rel !== APP }
      : { localDir: i.appDir, sub: 'userapp', skip: isBuildProduct },
  ], c.timeouts.command * 1000, { skipUnchanged: i.reuse });
  checks.push({ name: 'upload', ok: true, durationMs: Date.now() - t0, message: i.reuse ? `${sent.length} changed files` : `${sent.length} files` });

  const earlyDone = await earlyRun;
  const plan = [...early, ...planOf(modWhere, appWhere).filter((x) => !early.includes(x) && x.name !== 'taint-before')];
  let n = 0;
  const runOne = (spec: StepSpec): Promise<StepRecord> => (spec.name === 'build-module' && gk ? buildModuleInGuest(session, spec, gk, i.log) : runStep(session, spec));
  const started = new Map<StepSpec, Promise<StepRecord>>(); // steps started alongside the one before (withNext)
  for (const [k, spec] of plan.entries()) {
    i.log(`step ${spec.name}`);
    const done = earlyDone.find(([sp]) => sp === spec)?.[1];
    if (early.includes(spec) && !done) break; // an earlier early step failed
    const next = plan[k + 1];
    if (spec.withNext && next && !started.has(next)) started.set(next, runOne(next));
    const rec = done ?? await (started.get(spec) ?? runOne(spec));
    records.set(spec.name, rec);
    await recordStep(runDir, ++n, rec);
    const check: Check = { name: spec.name, ok: rec.ok, failure: rec.failure, durationMs: rec.result.durationMs, message: rec.message };
    if (!rec.ok) Object.assign(check, await evidenceFor(i, spec, rec));
    checks.push(check);
    if (!rec.ok) break;
  }

  // The module's first-load lines (taint, signature) print once per boot: they are
  // required exactly when the kernel had no out-of-tree module before this run.
  const before = records.get('taint-before');
  const firstLoad = before?.ok ? (Number(before.result.stdout.trim()) & TAINT_OOT) === 0 : true;
  const appOut = records.get('app')?.result.stdout;
  const dmesg = records.get('dmesg-after')?.result.stdout;
  let captures: Record<string, string> | undefined;
  if (appOut !== undefined && dmesg !== undefined) {
    const m = matchTranscript(i.transcript, { kernel: dmesg, app: appOut }, { firstLoad });
    captures = m.captures;
    checks.push(m.ok
      ? { name: 'transcript', ok: true, durationMs: 0, message: `pid ${m.captures.pid ?? '?'}${firstLoad ? '' : ' (module loaded before this boot: first-load lines not expected)'}` }
      : {
        name: 'transcript', ok: false, failure: 'transcript', durationMs: 0, message: 'output differs from the expected transcript', evidence: formatMismatches(m, c.transcript),
        annotations: m.mismatches.map((x) => ({ file: i.transcriptFile, line: x.expected.lineNo, message: `${x.section}: ${x.why}: ${x.expected.text}` })),
      });
  }
  // The kernel log after the run: dmesg-after has it, unless the steps stopped before it.
  const afterRec = records.get('dmesg-after');
  const finalDmesg = afterRec?.ok ? afterRec.result.stdout : (await session.exec(['dmesg'], { timeoutMs: c.timeouts.command * 1000 })).stdout;
  await writeFile(path.join(runDir, 'dmesg.log'), finalDmesg);
  const after = records.get('taint-after');
  if (before?.ok && after?.ok) {
    const extra = unexpectedTaint(Number(before.result.stdout.trim()), Number(after.result.stdout.trim()));
    checks.push(extra.length
      ? { name: 'taint', ok: false, failure: 'splat', durationMs: 0, message: `new taint flags ${extra.join('')}`, evidence: `tainted ${before.result.stdout.trim()} -> ${after.result.stdout.trim()}` }
      : { name: 'taint', ok: true, durationMs: 0, message: `tainted ${after.result.stdout.trim()}` });
  }
  return { checks, captures, finalDmesg, records };
}
