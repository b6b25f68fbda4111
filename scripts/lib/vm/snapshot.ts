// Snapshots of the booted lean guest: the first run of an image and VM
// configuration boots the guest once, and the moment it says sshd listens
// QEMU saves it (RAM and device state, ~120 MB) with the disk's writes in an
// overlay of its own. Where they live, what they are keyed by, how one is
// saved (atomically) and removed. resume.ts starts QEMU from one.
// snapshotKey() and the spec functions are pure; docs/resume.md has the
// design and the caveats.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdirPrivate, privateDir } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import { checkIntegrity, readIntegrity, recordIntegrity } from '../core/integrity.ts';
import { run } from '../core/proc.ts';
import { settlesWithin, waitUntil } from '../core/wait.ts';
import type { VmSpec } from './qemu-args.ts';
import { Qmp } from './qmp.ts';
import { SSHD_READY_MARKER, Vm } from './vm.ts';

export const SNAPSHOT_FD = 3;
export interface SnapshotMeta {
  key: string;
  imageKey: string;
  qemuVersion: string;
  createdAt: string;
  bootMs: number;
  stateBytes: number;
}

/**
 * The fields of a guest spec a saved guest does not depend on: where the
 * SSH port, the serial log and the QMP socket are (a resumed QEMU has its
 * own), and what saving and resuming set themselves. Every other field,
 * one added tomorrow too, is in the key: a field forgotten here makes a new
 * key, never a resume of a guest saved without it.
 */
export const NOT_IN_KEY = ['sshPort', 'serialLog', 'qmpSocket', 'keepDiskWrites', 'incoming', 'incomingFd'] as const satisfies readonly (keyof VmSpec)[];

/**
 * What a saved guest depends on: the image, QEMU's version and the whole
 * guest spec (as resumable: forkable()) less NOT_IN_KEY. Under KVM the
 * host's CPU too (-cpu host).
 */
export function snapshotKey(spec: VmSpec, o: { imageKey: string; qemuVersion: string; hostCpu?: string }): string {
  const f: Record<string, unknown> = { ...forkable(spec) };
  for (const k of NOT_IN_KEY) delete f[k];
  // The devices' arguments name the run's scratch files; their key names the devices.
  f.devices = spec.devices?.key.length ? spec.devices.key : undefined;
  const guest = Object.fromEntries(
    Object.entries(f)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1)),
  );
  const parts = { v: 3, imageKey: o.imageKey, qemu: o.qemuVersion, hostCpu: f.accel === 'kvm' ? (o.hostCpu ?? '') : '', guest };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** A spec made resumable. qboot never starts a guest that has the VM generation ID device (it runs no ACPI table loader), so SeaBIOS: it only costs the one boot that is saved. */
export function forkable(spec: VmSpec): VmSpec {
  return { ...spec, bios: undefined, forkable: true };
}

/** The guest booted once to be saved: its disk writes go into the snapshot's own overlay; its console into serial-boot.log beside the run's. */
export function savingSpec(spec: VmSpec, dir: string, sockets: string): VmSpec {
  return {
    ...forkable(spec),
    rootfs: path.join(dir, 'disk.qcow2'),
    keepDiskWrites: true,
    serialLog: path.join(path.dirname(spec.serialLog), 'serial-boot.log'),
    qmpSocket: path.join(sockets, 'qmp.sock'),
  };
}

/** The guest resumed from a snapshot: the saved state in, the saved disk under a throwaway -snapshot layer. */
export function resumingSpec(spec: VmSpec, dir: string): VmSpec {
  return { ...forkable(spec), rootfs: path.join(dir, 'disk.qcow2'), incoming: path.join(dir, 'state'), incomingFd: SNAPSHOT_FD };
}

export function snapshotsDir(cacheDir: string): string {
  return path.join(cacheDir, 'snapshots');
}

/** The snapshot for key, when it is whole (written by rename, so a directory is whole or absent). */
export async function findSnapshot(cacheDir: string, key: string, log?: (l: string) => void): Promise<string | undefined> {
  const dir = path.join(snapshotsDir(cacheDir), key);
  if (!existsSync(path.join(dir, 'meta.json'))) return undefined;
  await privateDir(dir); // the guest's memory, its host key among it
  // The saved state and disk as written at the save (core/integrity.ts); a changed one is removed, and the guest saved again.
  const rec = await readIntegrity(dir);
  const bad = rec ? await checkIntegrity(dir, rec) : [];
  if (bad.length) {
    log?.(`snapshot: ${dir} changed since it was saved (${bad.join('; ')}); removing it`);
    await removeSnapshot(dir);
    return undefined;
  }
  // When it was last used, for evictions(): outside the integrity record, which covers what QEMU reads.
  await writeFile(path.join(dir, USED), `${new Date().toISOString()}\n`, { mode: 0o600 }).catch(() => undefined);
  return dir;
}

/** A saved guest's last use, beside its meta.json. */
export const USED = 'used';
/** Saved guests kept per image: one per guest spec in use (test, test --memcheck, a suite's cold devices …), the least recently used beyond this many removed. */
export const SNAPSHOTS_PER_IMAGE = 4;

/** Which of an image's other saved guests to remove when key is saved: the least recently used, so that key and the SNAPSHOTS_PER_IMAGE - 1 used last stay. Pure. */
export function evictions(saved: readonly { dir: string; imageKey?: string; usedAt: number }[], o: { imageKey: string; keep?: number }): string[] {
  const keep = (o.keep ?? SNAPSHOTS_PER_IMAGE) - 1;
  return saved
    .filter((s) => s.imageKey === o.imageKey)
    .sort((a, b) => b.usedAt - a.usedAt || a.dir.localeCompare(b.dir))
    .slice(Math.max(0, keep))
    .map((s) => s.dir);
}

/** Waits (polling QMP against the deadline, QEMU alive) until the migration ends; returns its final status. */
export async function migrationEnd(qmp: Qmp, vm: Vm, deadline: number, what: 'query-migrate' | 'query-status'): Promise<string> {
  let status = 'none';
  const w = await waitUntil(
    async () => {
      const r = await qmp.execute<{ status?: string }>(what).catch(() => ({ status: 'qemu-exited' }));
      status = r.status ?? 'none';
      return !['setup', 'active', 'device', 'pre-switchover', 'inmigrate', 'none'].includes(status) && status;
    },
    { deadlineMs: Math.max(0, deadline - Date.now()), intervalMs: 10, alive: () => vm.alive },
  );
  if (w.end === 'ready') return w.value;
  return w.end === 'dead' ? 'qemu-exited' : `still ${status} at the deadline`;
}

/** Saves the running guest's state into file through a unix socket this process listens on (no shell: QEMU's exec: URIs need one). */
async function migrateToFile(vm: Vm, qmp: Qmp, file: string, sock: string, deadlineMs: number): Promise<void> {
  const deadline = Date.now() + deadlineMs;
  const out = createWriteStream(file, { mode: 0o600 });
  let srv: net.Server | undefined;
  const written = new Promise<void>((resolve, reject) => {
    srv = net.createServer((conn) => {
      srv!.close();
      conn.on('error', reject);
      out.on('error', reject);
      out.on('finish', resolve);
      conn.pipe(out);
    });
  });
  // Awaited below only once the migration completed; a failure before then is reported by the status.
  written.catch(() => undefined);
  await new Promise<void>((resolve, reject) => {
    srv!.once('error', reject);
    srv!.listen(sock, resolve);
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    // QEMU's default cap is 32 MiB/s; the file is local.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 16 * 1024 ** 3 });
    await qmp.execute('migrate', { uri: `unix:${sock}` });
    const status = await migrationEnd(qmp, vm, deadline, 'query-migrate');
    if (status !== 'completed') throw new KmodvmError('boot', `saving the guest failed: migration ${status}`, { evidence: await vm.deathEvidence() });
    await Promise.race([
      written,
      new Promise((_, rej) => {
        timer = setTimeout(() => rej(new Error('the saved state was not all written within 30 s')), 30_000);
      }),
    ]);
  } finally {
    clearTimeout(timer);
    srv?.close();
    if (!out.writableFinished) out.destroy();
  }
}

/** The boot that was to be saved failed in the guest itself (no marker, QEMU died): the run's boot would fail the same way. */
export class SnapshotBootFailed extends Error {
  constructor(
    readonly failure: KmodvmError,
    readonly serialLog: string,
  ) {
    super(failure.message);
  }
}

/** Boots the guest once and saves it as the snapshot for key (atomically: a temporary directory, then rename). */
export async function takeSnapshot(o: {
  cacheDir: string;
  key: string;
  spec: VmSpec;
  imageKey: string;
  qemuVersion: string;
  deadlineMs: number;
  log: (l: string) => void;
}): Promise<string> {
  const final = path.join(snapshotsDir(o.cacheDir), o.key);
  const tmp = `${final}.tmp-${process.pid}`;
  const sockets = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-snap-'));
  await rm(tmp, { recursive: true, force: true });
  await mkdirPrivate(tmp);
  try {
    const format = o.spec.rootfs.endsWith('.qcow2') ? 'qcow2' : 'raw';
    const img = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', format, '-b', path.resolve(o.spec.rootfs), path.join(tmp, 'disk.qcow2')], {
      timeoutMs: 30_000,
    });
    if (img.exitCode !== 0) throw new KmodvmError('boot', `qemu-img could not make the snapshot's disk overlay (${img.reason})`, { evidence: img.stderr });
    const vm = new Vm(savingSpec(o.spec, tmp, sockets));
    o.log(`$ ${vm.commandLine()}`);
    const t0 = Date.now();
    vm.start();
    try {
      await vm.waitForSerial(SSHD_READY_MARKER, o.deadlineMs).catch((e: unknown) => {
        throw e instanceof KmodvmError ? new SnapshotBootFailed(e, vm.spec.serialLog) : e;
      });
      const bootMs = Date.now() - t0;
      const qmp = await Qmp.connect(vm.spec.qmpSocket, { deadlineMs: 10_000, alive: () => vm.alive });
      try {
        await migrateToFile(vm, qmp, path.join(tmp, 'state'), path.join(sockets, 'migrate.sock'), o.deadlineMs);
        // A clean quit closes (and flushes) the disk overlay.
        await qmp.execute('quit').catch(() => undefined);
      } finally {
        qmp.close();
      }
      await settlesWithin(vm.waitExit(), 5000);
      const meta: SnapshotMeta = {
        key: o.key,
        imageKey: o.imageKey,
        qemuVersion: o.qemuVersion,
        createdAt: new Date().toISOString(),
        bootMs,
        stateBytes: (await stat(path.join(tmp, 'state'))).size,
      };
      await writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    } finally {
      await vm.kill();
    }
    // Once QEMU is gone, so the disk overlay is final.
    await recordIntegrity(tmp, ['state', 'disk.qcow2', 'meta.json']);
    // One saved guest per guest spec, SNAPSHOTS_PER_IMAGE per image: the least recently used beyond that go.
    for (const other of evictions(await otherSnapshots(o.cacheDir, o.key), { imageKey: o.imageKey })) await removeSnapshot(other);
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    return final;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  } finally {
    await rm(sockets, { recursive: true, force: true });
  }
}

/** The saved guests other than key, with their image and last use (the save, when never resumed). */
async function otherSnapshots(cacheDir: string, key: string): Promise<{ dir: string; imageKey?: string; usedAt: number }[]> {
  const dir = snapshotsDir(cacheDir);
  const out: { dir: string; imageKey?: string; usedAt: number }[] = [];
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    if (n === key || n.includes('.tmp-') || n.startsWith('.')) continue;
    const meta = JSON.parse(await readFile(path.join(dir, n, 'meta.json'), 'utf8').catch(() => '{}')) as Partial<SnapshotMeta>;
    const used = Date.parse(await readFile(path.join(dir, n, USED), 'utf8').catch(() => meta.createdAt ?? ''));
    out.push({ dir: path.join(dir, n), imageKey: meta.imageKey, usedAt: Number.isNaN(used) ? 0 : used });
  }
  return out;
}

/** Beside no meta.json, in a snapshot's directory: this guest cannot be saved or resumed on this host (QEMU's version and, under KVM, the CPU are in the key). */
export const UNUSABLE = 'unusable.json';

export async function markUnusable(cacheDir: string, key: string, imageKey: string, reason: string): Promise<void> {
  const dir = path.join(snapshotsDir(cacheDir), key);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, UNUSABLE), JSON.stringify({ key, imageKey, reason, at: new Date().toISOString() }, null, 2) + '\n');
}

/** Removes a snapshot: renamed first, so a reader never sees half of one. */
export async function removeSnapshot(dir: string): Promise<void> {
  const doomed = `${dir}.tmp-rm-${process.pid}`;
  await rename(dir, doomed).catch(() => undefined);
  await rm(doomed, { recursive: true, force: true });
}
