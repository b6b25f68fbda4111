// Long-lived VM instances for the developer loop (vm:up/ssh/logs/status/down,
// vm:watch, vm:test --reuse). State lives in <cache>/instances/<name>/
// state.json, written atomically; an instance whose QEMU is gone is stale
// and is cleaned up with a note.

import { existsSync, readFileSync } from 'node:fs';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from '../core/atomic.ts';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { acquire, isLocked } from '../core/lock.ts';
import { SshSession } from '../guest/ssh.ts';

/** state.json: written by vm:up once the instance is up; read with this schema, so a damaged one is stale, not a crash. */
export const instanceStateSchema = z.object({
  name: z.string(),
  pid: z.number().int().positive(),
  port: z.number().int().positive(),
  accel: z.string(),
  imageKey: z.string(),
  imageDir: z.string(),
  kernelVersion: z.string(),
  startedAt: z.string(),
  dir: z.string(),
  serialLog: z.string(),
  clientKey: z.string(),
  hostPub: z.string(),
});
export type InstanceState = z.infer<typeof instanceStateSchema>;

export function validateName(name: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9_-]{0,31}$/.test(name)) {
    throw new KmodvmError('usage', `config field \`name\` must be 1-32 letters, digits, _ or -, got ${JSON.stringify(name)}`);
  }
  return name;
}

export const instancesDir = (c: Pick<Config, 'cacheDir'>): string => path.join(c.cacheDir, 'instances');
export const instanceDir = (c: Pick<Config, 'cacheDir'>, name: string): string => path.join(instancesDir(c), validateName(name));

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

/** An instance, recorded: its state.json, and for plain ssh(1) its pinned host key, so nobody has to turn checking off. */
export async function recordInstance(s: InstanceState): Promise<void> {
  await writeState(s);
  await writeFile(path.join(s.dir, 'known_hosts'), `[127.0.0.1]:${s.port} ${(await readFile(s.hostPub, 'utf8')).trim()}\n`);
}

type ReadState = { state: InstanceState } | { bad: string } | undefined;

/** The instance's state.json: undefined when there is none, { bad } when it cannot be trusted (truncated, hand-edited, another instance's directory). */
export async function readState(c: Pick<Config, 'cacheDir'>, name: string): Promise<ReadState> {
  const f = path.join(instanceDir(c, name), 'state.json');
  if (!existsSync(f)) return undefined;
  let raw: unknown;
  try {
    raw = JSON.parse(await readFile(f, 'utf8'));
  } catch (e) {
    return { bad: `its state.json does not parse (${(e as Error).message})` };
  }
  const r = instanceStateSchema.safeParse(raw);
  if (!r.success) return { bad: `its state.json is not an instance's (${r.error.issues[0].path.join('.')}: ${r.error.issues[0].message})` };
  // Only the instance's own directory is ever removed, whatever state.json names.
  if (path.resolve(r.data.dir) !== instanceDir(c, name) || r.data.name !== name) return { bad: `its state.json names another directory (${r.data.dir})` };
  return { state: r.data };
}

const lockTarget = (c: Pick<Config, 'cacheDir'>, name: string): string => path.join(instancesDir(c), `.${validateName(name)}`);

/** Holds the instance's lock (vm:up, from the first file to state.json): a second vm:up of the name waits, and nobody takes a booting instance's files for stale ones. */
export async function lockInstance(c: Pick<Config, 'cacheDir'>, name: string, waitS: number): Promise<() => Promise<void>> {
  return acquire(lockTarget(c, name), { waitS, failure: 'boot', what: `instance ${name}` });
}

/** Whether a vm:up of this name holds the lock right now. */
export const isBooting = (c: Pick<Config, 'cacheDir'>, name: string): Promise<boolean> => isLocked(lockTarget(c, name));

export type Lookup = { state: InstanceState; alive: true } | { state?: InstanceState; alive: false; staleNote?: string; booting?: boolean };

/** The named instance; a stale one (QEMU gone, or a state.json that cannot be trusted) has its own directory removed, and the note says so. */
export async function lookup(c: Pick<Config, 'cacheDir'>, name: string, o: { holdingLock?: boolean } = {}): Promise<Lookup> {
  const dir = instanceDir(c, name);
  const first = await readState(c, name);
  // An instance that is up has written its state.json, so it is not booting (and the lock is not read: ssh starts faster).
  if (first && 'state' in first && isQemuAlive(first.state.pid)) return { state: first.state, alive: true };
  if (!o.holdingLock && (await isBooting(c, name)))
    return { alive: false, booting: true, staleNote: `instance ${name} is still booting (another vm:up holds it)` };
  const read = await readState(c, name);
  if (!read) {
    // A directory without state.json, and no vm:up holding the lock: the leftover of an interrupted vm:up.
    if (existsSync(dir)) await rm(dir, { recursive: true, force: true });
    return { alive: false };
  }
  if ('bad' in read) {
    await rm(dir, { recursive: true, force: true });
    return { alive: false, staleNote: `instance ${name} was stale: ${read.bad}; removed ${dir}` };
  }
  const { state } = read;
  if (isQemuAlive(state.pid)) return { state, alive: true };
  await rm(dir, { recursive: true, force: true });
  return { state, alive: false, staleNote: `instance ${name} was stale (QEMU pid ${state.pid} is gone); cleaned up its files` };
}

/** The instances' names (their directories; the dot-files are locks). */
export async function listNames(c: Pick<Config, 'cacheDir'>): Promise<string[]> {
  return (await readdir(instancesDir(c)).catch(() => [] as string[])).filter((n) => !n.startsWith('.')).sort();
}

export async function requireRunning(c: Pick<Config, 'cacheDir'>, name: string, log: (l: string) => void): Promise<InstanceState> {
  const l = await lookup(c, name);
  if (l.alive) return l.state;
  if (l.staleNote) log(l.staleNote);
  throw new KmodvmError('usage', `no running instance named ${name}`, { hint: `start it: ${kmodvmCommand('up', `--name ${name}`)}` });
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
