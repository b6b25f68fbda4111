// gdb on a guest (issue 26.1): QEMU's stub listens on gdb.sock in the
// guest's 0700 directory; gdb runs in the build sandbox (no network, no unix
// sockets, the host read-only), so the stub reaches it through two FIFOs
// that kmodvm relays to the socket. The module's symbols go in at the
// addresses the guest gives; after gdb ends, a guest it left stopped is
// continued, so the test goes on.
import { constants, existsSync, openSync } from 'node:fs';
import { chmod, mkdir, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import path from 'node:path';
import { runSandboxed, sandboxUsable } from '../build/sandbox.ts';
import type { RunResult } from '../core/end.ts';
import { KmodvmError } from '../core/errors.ts';
import { run } from '../core/proc.ts';
import { waitUntil } from '../core/wait.ts';
import type { SshSession } from '../guest/ssh.ts';
import type { Requirement } from '../host/preflight.ts';
import { Qmp } from '../vm/qmp.ts';
import { type GdbPlan, gdbArgs, gdbScript, type ModuleSymbols, parseSections, sectionsCommand } from './gdb-script.ts';

export const GDB_REQUIREMENT: Requirement = { probe: 'gdb', pkg: 'gdb', why: 'the debugger (kmodvm gdb, test --gdb)' };

/** The module as kmodvm loaded it: the guest's .ko, and the host's copy with its debug info when the host built it. */
export interface GdbModule {
  name: string;
  guestKo: string;
  hostKo?: string;
}

/** Each loaded module's sections from the guest; its .ko from the host build, else copied from the guest into dir. */
export async function moduleSymbols(
  session: Pick<SshSession, 'exec'>,
  modules: readonly GdbModule[],
  dir: string,
  timeoutMs: number,
): Promise<ModuleSymbols[]> {
  const out: ModuleSymbols[] = [];
  for (const m of modules) {
    const r = await session.exec(sectionsCommand(m.name), { timeoutMs });
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await writeFile(path.join(dir, `sections-${m.name}.txt`), r.stdout, { mode: 0o600 });
    const sections = parseSections(r.stdout);
    if (!sections.size) throw new KmodvmError('usage', `gdb: module ${m.name} is not loaded in the guest (no /sys/module/${m.name}/sections/)`);
    out.push({ ...(await moduleFile(session, m, dir, timeoutMs)), sections });
  }
  return out;
}

/** The module's .ko with its debug info on the host: the host build's, else copied from the guest into dir (a module not loaded yet too: --gdb-before-load). */
export async function moduleFile(session: Pick<SshSession, 'exec'>, m: GdbModule, dir: string, timeoutMs: number): Promise<{ name: string; ko: string }> {
  if (m.hostKo) return { name: m.name, ko: m.hostKo };
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const b = await session.exec(['base64', '-w0', m.guestKo], { timeoutMs });
  if (b.exitCode !== 0) throw new KmodvmError('usage', `gdb: cannot read ${m.guestKo} in the guest: ${b.stderr.trim()}`);
  const ko = path.join(dir, `${m.name}.ko`);
  await writeFile(ko, Buffer.from(b.stdout.trim(), 'base64'), { mode: 0o600 });
  return { name: m.name, ko };
}

/** A debugger reads what the user built and what the guest's memory holds: never unconfined. A host that forbids the sandbox says so, with what to do. */
export function requireSandbox(tool: string): void {
  const sandbox = sandboxUsable();
  if (!sandbox.ok)
    throw new KmodvmError('setup', `${tool} runs in the build sandbox, and ${sandbox.why}`, {
      hint: 'on Ubuntu 24.04 and GitHub runners: sudo sysctl kernel.apparmor_restrict_unprivileged_userns=0, or run as root (docs/debugging.md)',
    });
}

/** Quoted for the sh that gdb runs a `target remote | …` command with. */
const shq = (s: string): string => `'${s.replace(/'/g, `'\\''`)}'`;

/** Two FIFOs between the sandbox's gdb and the stub's socket: kmodvm copies bytes both ways until close(). */
export async function relay(gdbSocket: string, dir: string, deadlineMs: number): Promise<{ target: string; close: () => void }> {
  const toGdb = path.join(dir, 'to-gdb');
  const fromGdb = path.join(dir, 'from-gdb');
  for (const f of [toGdb, fromGdb]) {
    await rm(f, { force: true });
    const r = await run('mkfifo', ['-m', '0600', f], { timeoutMs: 10_000 });
    if (r.exitCode !== 0) throw new KmodvmError('internal', `mkfifo ${f}: ${r.reason}`, { evidence: r.stderr });
  }
  const up = await waitUntil(() => existsSync(gdbSocket), { deadlineMs });
  if (up.end !== 'ready')
    throw new KmodvmError('boot', `gdb: the guest has no gdb stub at ${gdbSocket}`, {
      hint: 'the guest is not running, or was started by an older kmodvm: restart it',
    });
  const sock = net.connect(gdbSocket);
  await new Promise<void>((resolve, reject) => {
    sock.once('connect', resolve);
    sock.once('error', (e) =>
      reject(new KmodvmError('boot', `gdb: cannot connect to ${gdbSocket}: ${e.message}`, { hint: 'is another gdb attached? QEMU takes one at a time' })),
    );
  });
  // O_RDWR: a FIFO so opened never waits for its other end (Linux), and never reads EOF while kmodvm holds it; the sockets own the fds.
  const flags = constants.O_RDWR | constants.O_NONBLOCK;
  const out = new net.Socket({ fd: openSync(toGdb, flags), readable: false, writable: true });
  const back = new net.Socket({ fd: openSync(fromGdb, flags), readable: true, writable: false });
  sock.pipe(out);
  back.pipe(sock);
  const ignore = (): void => {};
  for (const s of [sock, out, back]) s.on('error', ignore);
  return {
    target: `| sh -c ${shq(`cat < ${shq(toGdb)} & cat > ${shq(fromGdb)}; kill $! 2>/dev/null`)}`,
    close: () => {
      for (const s of [sock, out, back]) s.destroy();
    },
  };
}

/** A guest gdb left stopped runs again: a detach continues it; QEMU pauses the guest when gdb connects, and a gdb that ended otherwise leaves it so. */
export async function continueGuest(qmpSocket: string): Promise<void> {
  const q = await Qmp.connect(qmpSocket, { deadlineMs: 5000, alive: () => true }).catch(() => undefined);
  if (!q) return;
  try {
    const st = await q.execute<{ status: string; running: boolean }>('query-status');
    if (!st.running && (st.status === 'debug' || st.status === 'paused')) await q.execute('cont');
  } finally {
    q.close();
  }
}

export interface GdbSession {
  socket: string;
  qmpSocket: string;
  /** A private directory for the script, the FIFOs, copied .ko files and the log. */
  dir: string;
  plan: Omit<GdbPlan, 'target'>;
  /** What gdb may read besides its own dir: the .ko files' dirs, the sources, the user's script, the kernel tree. */
  readable: readonly string[];
  timeoutMs: number;
}

/** gdb attached in the sandbox, batch or at the user's terminal; its output (batch) in dir/gdb.log. attached: the symbols are in (false: gdb ended first). The guest runs on after it. */
export async function startGdb(s: GdbSession): Promise<{ attached: Promise<boolean>; done: Promise<RunResult & { ended?: boolean }>; end: () => void }> {
  requireSandbox('gdb');
  await mkdir(s.dir, { recursive: true, mode: 0o700 });
  await chmod(s.dir, 0o700);
  const marker = path.join(s.dir, 'attached');
  await rm(marker, { force: true });
  const r = await relay(s.socket, s.dir, 10_000);
  const script = path.join(s.dir, 'kmodvm.gdb');
  await writeFile(script, gdbScript({ ...s.plan, target: r.target, marker }), { mode: 0o600 });
  const readable = [...new Set(s.readable.filter((d) => existsSync(d) && !d.startsWith(s.dir)))];
  let ended = false;
  const ac = new AbortController();
  const done = (async () => {
    try {
      const res = await runSandboxed(
        'gdb',
        gdbArgs(script, s.plan.batch),
        { writable: [s.dir], readable, tmp: false, newSession: s.plan.batch, cwd: s.dir },
        { timeoutMs: s.timeoutMs, terminal: !s.plan.batch, signal: ac.signal },
      );
      if (s.plan.batch) await writeFile(path.join(s.dir, 'gdb.log'), `${res.stdout}${res.stderr ? `\n--- stderr\n${res.stderr}` : ''}`);
      return ac.signal.aborted ? { ...res, ended: true } : res;
    } finally {
      ended = true;
      r.close();
      await continueGuest(s.qmpSocket);
    }
  })();
  const attached = waitUntil(() => existsSync(marker), { deadlineMs: 60_000, alive: () => !ended }).then((w) => w.end === 'ready');
  return { attached, done, end: () => ac.abort() };
}
