// Steps over SSH. Each step is data (name, argv, timeout, failure class);
// runStep() runs one on a session and records stdout, stderr, exit code and
// duration in the run directory.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { FailureClass } from '../core/errors.ts';
import type { ExecResult, SshSession } from './ssh.ts';
import { markedLine } from './step-marks.ts';

/** A running guest as the suite's steps see it: its SSH session and its serial console's file. */
export interface Guest {
  session: SshSession;
  serialLog: string;
  /** QEMU's QMP socket, through which the suite's hot devices are plugged (suite/devices-plug.ts). */
  qmpSocket?: string;
}

export interface StepSpec {
  name: string;
  argv: string[];
  cwd?: string;
  timeoutMs: number;
  /** The class of failure when the step does not exit 0. */
  failure: FailureClass;
  /** Start the next step at the same time: it needs nothing from this one (each has its own channel, record and timeout). */
  withNext?: boolean;
  /**
   * The code under test runs here (a test's run line, a setup line, the
   * module's Makefile in the guest): on an exec channel of its own, whose
   * exit status sshd reports, never on a kept shell whose streams the later
   * steps (rmmod, the taint, the kernel log) share.
   */
  untrusted?: boolean;
  /** Mark the kernel log before and after it (step-marks.ts): a load step's own kernel lines are its evidence. */
  marked?: boolean;
}

export interface StepRecord {
  name: string;
  ok: boolean;
  failure?: FailureClass;
  result: ExecResult;
  /** A one-line explanation when it failed. */
  message?: string;
}

export const GUEST_WORK = '/root/kmodvm';

/** Judges one finished command: a timeout is its own class. */
export function judge(spec: StepSpec, r: ExecResult): StepRecord {
  if (r.timedOut) return { name: spec.name, ok: false, failure: 'timeout', result: r, message: `${spec.name} ${r.reason}` };
  if (r.exitCode !== 0) return { name: spec.name, ok: false, failure: spec.failure, result: r, message: `${spec.name} ${r.reason}` };
  return { name: spec.name, ok: true, result: r };
}

export async function recordStep(runDir: string, index: number, rec: StepRecord): Promise<void> {
  const base = path.join(runDir, 'steps', `${String(index).padStart(2, '0')}-${rec.name}`);
  await writeFile(`${base}.stdout`, rec.result.stdout);
  await writeFile(`${base}.stderr`, rec.result.stderr);
  const { stdout: _o, stderr: _e, ...meta } = rec.result;
  await writeFile(`${base}.json`, JSON.stringify({ ...meta, ok: rec.ok, failure: rec.failure, message: rec.message }, null, 2) + '\n');
}

export async function runStep(session: SshSession, spec: StepSpec): Promise<StepRecord> {
  const o = { timeoutMs: spec.timeoutMs, cwd: spec.cwd };
  if (spec.marked && !spec.untrusted) return judge(spec, await session.execKeptLine(markedLine(spec.name, spec.argv), o));
  return judge(spec, await (spec.untrusted ? session.exec(spec.argv, o) : session.execKept(spec.argv, o)));
}

/** Compiler diagnostics with guest paths rewritten to host paths. */
export function mapGuestPaths(text: string, guestDir: string, hostDir: string): string {
  return text.split(`${guestDir}/`).join(`${hostDir}/`);
}

/** file:line:col: error/warning lines of gcc output. */
export function compilerDiagnostics(text: string): { file: string; line: number; col?: number; severity: string; message: string }[] {
  const out = [];
  for (const m of text.matchAll(/^(\S[^:\n]*):(\d+):(?:(\d+):)? (error|warning|fatal error): (.*)$/gm)) {
    out.push({ file: m[1], line: Number(m[2]), col: m[3] ? Number(m[3]) : undefined, severity: m[4], message: m[5] });
  }
  return out;
}
