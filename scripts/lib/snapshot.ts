// Resume instead of boot. The first run of an image and VM configuration
// boots the lean guest once, and the moment the guest says sshd listens
// QEMU saves it (RAM and device state, ~120 MB) with the disk's writes in an
// overlay of its own; later runs start QEMU from that state (-incoming) and
// reach SSH in about a second instead of four to six under TCG. Every
// resumed guest reseeds its RNG (QEMU's VM generation ID: "crng reseeded due
// to virtual machine fork") and gets the host's time. A snapshot that will
// not resume is removed and the run boots. snapshotKey() and the spec
// functions are pure; docs/resume.md has the design and the caveats.
import { createHash } from 'node:crypto';
import { createWriteStream, existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { KmodvmError } from './errors.ts';
import { posixJoin, run } from './proc.ts';
import { Qmp } from './qmp.ts';
import type { VmSpec } from './qemu-args.ts';
import type { SshSession } from './ssh.ts';
import { isPortInUse, QEMU, SSHD_READY_MARKER, Vm } from './vm.ts';
import type { Config } from './config.ts';

export const SNAPSHOT_FD = 3;
/** What a resumed guest prints on its console once its clock is set. */
export const RESUMED_MARKER = 'kmodvm-init: resumed from a snapshot';

/** The shell command that sets a resumed guest's clock to now and says so on its console. Pure. */
export function resumedCommand(now: Date): string {
  const at = `@${(now.getTime() / 1000).toFixed(3)}`;
  return `date -u -s ${posixJoin([at])} >/dev/null && read -r up _ </proc/uptime && echo ${posixJoin([RESUMED_MARKER])}" at \${up}s; clock set to "${posixJoin([now.toISOString()])} >/dev/console`;
}

export interface SnapshotMeta { key: string; imageKey: string; qemuVersion: string; createdAt: string; bootMs: number; stateBytes: number }

/**
 * What a saved guest depends on: the image, QEMU's version and every part
 * of the command line that shapes the machine. Not the SSH port, the serial
 * log or the QMP socket, which a resumed QEMU may change. Under KVM the
 * host's CPU too (-cpu host).
 */
export function snapshotKey(spec: VmSpec, o: { imageKey: string; qemuVersion: string; hostCpu?: string }): string {
  const f = forkable(spec);
  const parts = {
    v: 1, imageKey: o.imageKey, qemu: o.qemuVersion, hostCpu: f.accel === 'kvm' ? o.hostCpu ?? '' : '',
    accel: f.accel, cpus: f.cpus, memoryMiB: f.memoryMiB, kernel: f.kernel, initrd: f.initrd, cmdline: f.cmdline, rootfs: f.rootfs, bios: f.bios ?? '',
  };
  return createHash('sha256').update(JSON.stringify(parts)).digest('hex').slice(0, 16);
}

/** A spec made resumable. qboot never starts a guest that has the VM generation ID device (it runs no ACPI table loader), so SeaBIOS: it only costs the one boot that is saved. */
export function forkable(spec: VmSpec): VmSpec {
  return { ...spec, bios: undefined, forkable: true };
}

/** The guest booted once to be saved: its disk writes go into the snapshot's own overlay; its console into serial-boot.log beside the run's. */
export function savingSpec(spec: VmSpec, dir: string, sockets: string): VmSpec {
  return {
    ...forkable(spec), rootfs: path.join(dir, 'disk.qcow2'), keepDiskWrites: true,
    serialLog: path.join(path.dirname(spec.serialLog), 'serial-boot.log'), qmpSocket: path.join(sockets, 'qmp.sock'),
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
export async function findSnapshot(cacheDir: string, key: string): Promise<string | undefined> {
  const dir = path.join(snapshotsDir(cacheDir), key);
  return existsSync(path.join(dir, 'meta.json')) ? dir : undefined;
}

/** Waits (polling QMP against the deadline, QEMU alive) until the migration ends; returns its final status. */
async function migrationEnd(qmp: Qmp, vm: Vm, deadline: number, what: 'query-migrate' | 'query-status'): Promise<string> {
  for (;;) {
    if (!vm.alive) return 'qemu-exited';
    const r = await qmp.execute<{ status?: string }>(what).catch(() => ({ status: 'qemu-exited' }));
    const status = r.status ?? 'none';
    if (!['setup', 'active', 'device', 'pre-switchover', 'inmigrate', 'none'].includes(status)) return status;
    if (Date.now() > deadline) return `still ${status} at the deadline`;
    await new Promise((res) => setTimeout(res, 10));
  }
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
  await new Promise<void>((resolve, reject) => { srv!.once('error', reject); srv!.listen(sock, resolve); });
  let timer: NodeJS.Timeout | undefined;
  try {
    // QEMU's default cap is 32 MiB/s; the file is local.
    await qmp.execute('migrate-set-parameters', { 'max-bandwidth': 16 * 1024 ** 3 });
    await qmp.execute('migrate', { uri: `unix:${sock}` });
    const status = await migrationEnd(qmp, vm, deadline, 'query-migrate');
    if (status !== 'completed') throw new KmodvmError('boot', `saving the guest failed: migration ${status}`, { evidence: await vm.deathEvidence() });
    await Promise.race([written, new Promise((_, rej) => { timer = setTimeout(() => rej(new Error('the saved state was not all written within 30 s')), 30_000); })]);
  } finally {
    clearTimeout(timer);
    srv?.close();
    if (!out.writableFinished) out.destroy();
  }
}

/** The boot that was to be saved failed in the guest itself (no marker, QEMU died): the run's boot would fail the same way. */
export class SnapshotBootFailed extends Error {
  constructor(readonly failure: KmodvmError, readonly serialLog: string) { super(failure.message); }
}

/** Boots the guest once and saves it as the snapshot for key (atomically: a temporary directory, then rename). */
export async function takeSnapshot(o: { cacheDir: string; key: string; spec: VmSpec; imageKey: string; qemuVersion: string; deadlineMs: number; log: (l: string) => void }): Promise<string> {
  const final = path.join(snapshotsDir(o.cacheDir), o.key);
  const tmp = `${final}.tmp-${process.pid}`;
  const sockets = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-snap-'));
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { recursive: true });
  try {
    const format = o.spec.rootfs.endsWith('.qcow2') ? 'qcow2' : 'raw';
    const img = await run('qemu-img', ['create', '-q', '-f', 'qcow2', '-F', format, '-b', path.resolve(o.spec.rootfs), path.join(tmp, 'disk.qcow2')], { timeoutMs: 30_000 });
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
      await Promise.race([vm.waitExit(), new Promise((r) => setTimeout(r, 5000))]);
      const meta: SnapshotMeta = { key: o.key, imageKey: o.imageKey, qemuVersion: o.qemuVersion, createdAt: new Date().toISOString(), bootMs, stateBytes: (await stat(path.join(tmp, 'state'))).size };
      await writeFile(path.join(tmp, 'meta.json'), JSON.stringify(meta, null, 2) + '\n');
    } finally {
      await vm.kill();
    }
    // One snapshot per image: another configuration's is replaced.
    for (const other of await otherSnapshots(o.cacheDir, o.imageKey, o.key)) await removeSnapshot(other);
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

async function otherSnapshots(cacheDir: string, imageKey: string, key: string): Promise<string[]> {
  const dir = snapshotsDir(cacheDir);
  const out: string[] = [];
  for (const n of await readdir(dir).catch(() => [] as string[])) {
    if (n === key || n.includes('.tmp-')) continue;
    const meta = JSON.parse(await readFile(path.join(dir, n, 'meta.json'), 'utf8').catch(() => '{}')) as Partial<SnapshotMeta>;
    if (meta.imageKey === imageKey) out.push(path.join(dir, n));
  }
  return out;
}

/** Beside no meta.json, in a snapshot's directory: this guest cannot be saved or resumed on this host (QEMU's version and, under KVM, the CPU are in the key). */
export const UNUSABLE = 'unusable.json';

async function markUnusable(cacheDir: string, key: string, imageKey: string, reason: string): Promise<void> {
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

/** Starts QEMU from a snapshot and returns once SSH is ready and the guest's clock is the host's. */
export async function resumeVm(o: { spec: VmSpec; privateKey: string; hostPublicKey: string; deadlineMs: number; log: (l: string) => void; detached?: { stderrFile: string } }): Promise<{ vm: Vm; session: SshSession }> {
  const vm = new Vm(o.spec);
  o.log(`$ ${vm.commandLine()}`);
  const deadline = Date.now() + o.deadlineMs;
  vm.start(o.detached ? { detached: o.detached } : {});
  try {
    let status: string;
    try {
      const qmp = await Qmp.connect(o.spec.qmpSocket, { deadlineMs: o.deadlineMs, alive: () => vm.alive });
      status = await migrationEnd(qmp, vm, deadline, 'query-status').finally(() => qmp.close());
    } catch (e) {
      status = `QMP: ${(e as Error).message}`;
    }
    if (status !== 'running') {
      // A QEMU that cannot load the state exits; its stderr says why.
      await Promise.race([vm.waitExit(), new Promise((r) => setTimeout(r, 3000))]);
      const said = vm.exit?.stderr.trim().split('\n').pop();
      throw new KmodvmError('boot', `the guest did not resume from ${o.spec.incoming} (${vm.alive ? status : `QEMU exited${said ? `: ${said}` : ''}`})`, {
        evidence: vm.alive ? '' : await vm.deathEvidence(), hint: 'the snapshot is removed; the next run boots and saves a new one',
      });
    }
    const session = await vm.waitForSsh({ privateKey: o.privateKey, hostPublicKey: o.hostPublicKey, deadlineMs: Math.max(1000, deadline - Date.now()) });
    // The guest's clock stood still while it was saved. The console says so, for vm:logs.
    // One command line of quoted parts: under TCG every program started costs, and the
    // first ones after a resume most (QEMU translates the guest's code afresh).
    const now = new Date();
    const date = await session.execRaw(resumedCommand(now), { timeoutMs: 10_000 });
    if (date.exitCode !== 0) {
      session.close();
      throw new KmodvmError('boot', `could not set the resumed guest's clock (${date.reason})`, { evidence: date.stderr });
    }
    return { vm, session };
  } catch (e) {
    await vm.kill();
    throw e;
  }
}

/** The host CPU's model name: a KVM guest saved with -cpu host resumes only on the same. */
export async function hostCpu(): Promise<string> {
  const info = await readFile('/proc/cpuinfo', 'utf8').catch(() => '');
  return /^model name\s*:\s*(.*)$/m.exec(info)?.[1] ?? '';
}

export type Resumed = { vm: Vm; session: SshSession; how: 'resumed' | 'saved, then resumed'; key: string };
export type BootHow = 'booted' | Resumed['how'];

/** The lean profile's own guest resumes from a snapshot; a KVM probe, your own kernel, the systemd profile and --no-resume boot. */
export function resumable(c: Pick<Config, 'resume' | 'profile'>, o: { probeKvm?: boolean; byoInitrd?: string }): boolean {
  return c.resume && c.profile === 'lean' && !o.byoInitrd && !o.probeKvm;
}

export async function qemuVersion(): Promise<string> {
  const r = await run(QEMU, ['--version'], { timeoutMs: 10_000 });
  return r.stdout.split('\n')[0] ?? '';
}

/**
 * Resumes the guest of spec from its snapshot, saving one first when there
 * is none. Undefined when the snapshot machinery failed (logged; the caller
 * boots); a guest that failed its own boot throws that boot failure, unless
 * retryBoot(its console) says the caller's boot should try again.
 */
export async function resumeOrSave(o: {
  cacheDir: string; spec: VmSpec; imageKey: string; qemuVersion: string; privateKey: string; hostPublicKey: string;
  deadlineMs: number; log: (l: string) => void; retryBoot: (serial: string) => boolean; detached?: { stderrFile: string };
}): Promise<Resumed | undefined> {
  const key = snapshotKey(o.spec, { imageKey: o.imageKey, qemuVersion: o.qemuVersion, hostCpu: await hostCpu() });
  const unusable = path.join(snapshotsDir(o.cacheDir), key, UNUSABLE);
  if (existsSync(unusable)) {
    const why = (JSON.parse(await readFile(unusable, 'utf8').catch(() => '{}')) as { reason?: string }).reason ?? 'unknown';
    o.log(`snapshot: saving or resuming this guest failed on this host before (${why}); booting. Delete ${unusable} to try again`);
    return undefined;
  }
  let dir = await findSnapshot(o.cacheDir, key);
  let how: Resumed['how'] = 'resumed';
  if (!dir) {
    o.log(`snapshot: none yet for this image and VM configuration (${key}); booting once to save the guest, which later runs resume`);
    try {
      dir = await takeSnapshot({ cacheDir: o.cacheDir, key, spec: o.spec, imageKey: o.imageKey, qemuVersion: o.qemuVersion, deadlineMs: o.deadlineMs, log: o.log });
      how = 'saved, then resumed';
    } catch (e) {
      if (e instanceof SnapshotBootFailed && !o.retryBoot(await readFile(e.serialLog, 'utf8').catch(() => ''))) throw e.failure;
      o.log(`snapshot: could not save the guest (${(e as Error).message}); booting without one`);
      // A guest boot that crashed (retried by the caller) says nothing about saving; the machinery failing does.
      if (!(e instanceof SnapshotBootFailed)) await markUnusable(o.cacheDir, key, o.imageKey, `saving: ${(e as Error).message}`);
      return undefined;
    }
  }
  try {
    const r = await resumeVm({ spec: resumingSpec(o.spec, dir), privateKey: o.privateKey, hostPublicKey: o.hostPublicKey, deadlineMs: o.deadlineMs, log: o.log, detached: o.detached });
    return { ...r, how, key };
  } catch (e) {
    // Another process took the free port between our check and QEMU's bind: the snapshot is fine.
    if (isPortInUse((e as Error).message)) {
      o.log('snapshot: the SSH port was taken meanwhile; booting');
      return undefined;
    }
    o.log(`snapshot: ${(e as Error).message}; removing snapshot ${key} and booting`);
    await removeSnapshot(dir);
    // One saved by an earlier run may have been damaged since; one saved just now will not resume on this host.
    if (how === 'saved, then resumed') await markUnusable(o.cacheDir, key, o.imageKey, `resuming: ${(e as Error).message}`);
    return undefined;
  }
}
