// Long-lived VM instances for the developer loop (vm:up/ssh/logs/status/down,
// vm:watch, vm:test --reuse). State lives in <cache>/instances/<name>/
// state.json, written atomically; an instance whose QEMU is gone is stale
// and is cleaned up with a note.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readFile, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { writeJsonAtomic } from '../core/atomic.ts';
import { SshSession } from '../guest/ssh.ts';

export interface InstanceState {
  name: string;
  pid: number;
  port: number;
  accel: string;
  imageKey: string;
  imageDir: string;
  kernelVersion: string;
  startedAt: string;
  dir: string;
  serialLog: string;
  clientKey: string;
  hostPub: string;
}

export function validateName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(name)) {
    throw new KmodvmError('usage', `config field \`name\` must be 1-32 letters, digits, _ or -, got ${JSON.stringify(name)}`);
  }
  return name;
}

export const instancesDir = (c: Config): string => path.join(c.cacheDir, 'instances');
export const instanceDir = (c: Config, name: string): string => path.join(instancesDir(c), validateName(name));

/** Whether pid is a live QEMU (not just any process that reused the pid). */
export function isQemuAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('qemu-system');
  } catch {
    return false;
  }
}

export async function writeState(s: InstanceState): Promise<void> {
  await mkdir(s.dir, { recursive: true });
  await writeJsonAtomic(path.join(s.dir, 'state.json'), s);
}

export async function readState(c: Config, name: string): Promise<InstanceState | undefined> {
  const f = path.join(instanceDir(c, name), 'state.json');
  if (!existsSync(f)) return undefined;
  return JSON.parse(await readFile(f, 'utf8')) as InstanceState;
}

export type Lookup = { state: InstanceState; alive: true } | { state?: InstanceState; alive: false; staleNote?: string };

/** The named instance; a stale one (QEMU gone, files left) is removed, and the note says so. */
export async function lookup(c: Config, name: string): Promise<Lookup> {
  const state = await readState(c, name);
  if (!state) {
    // A directory without state.json is the leftover of an interrupted vm:up.
    if (existsSync(instanceDir(c, name))) await rm(instanceDir(c, name), { recursive: true, force: true });
    return { alive: false };
  }
  if (isQemuAlive(state.pid)) return { state, alive: true };
  await rm(state.dir, { recursive: true, force: true });
  return { state, alive: false, staleNote: `instance ${name} was stale (QEMU pid ${state.pid} is gone); cleaned up its files` };
}

export async function listNames(c: Config): Promise<string[]> {
  return (await readdir(instancesDir(c)).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

export async function requireRunning(c: Config, name: string, log: (l: string) => void): Promise<InstanceState> {
  const l = await lookup(c, name);
  if (l.alive) return l.state;
  if (l.staleNote) log(l.staleNote);
  throw new KmodvmError('usage', `no running instance named ${name}`, { hint: `start it: npm run vm:up -- --name ${name}` });
}

export async function connect(s: InstanceState): Promise<SshSession> {
  return SshSession.connect({
    port: s.port,
    privateKey: await readFile(s.clientKey, 'utf8'),
    hostPublicKey: await readFile(s.hostPub, 'utf8'),
    readyTimeoutMs: 20_000,
  });
}

export function uptime(s: InstanceState, now = Date.now()): string {
  const secs = Math.max(0, Math.round((now - Date.parse(s.startedAt)) / 1000));
  const h = Math.floor(secs / 3600),
    m = Math.floor((secs % 3600) / 60),
    sec = secs % 60;
  return h ? `${h}h${String(m).padStart(2, '0')}m` : m ? `${m}m${String(sec).padStart(2, '0')}s` : `${sec}s`;
}
