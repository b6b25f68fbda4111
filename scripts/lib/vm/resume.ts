// Resume instead of boot: start QEMU from the snapshot of the booted guest
// (snapshot.ts), saving one first when there is none, and reach SSH in about
// a second instead of four to six under TCG. Every resumed guest reseeds its
// RNG (QEMU's VM generation ID: "crng reseeded due to virtual machine fork")
// and gets the host's time. A snapshot that will not resume is removed and
// the run boots. resumable() and resumedCommand() are pure; docs/resume.md.

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { posixJoin } from '../core/end.ts';
import { KmodvmError } from '../core/errors.ts';
import { withLock } from '../core/lock.ts';
import { sh } from '../core/sh.ts';
import { settlesWithin } from '../core/wait.ts';
import type { SshSession } from '../guest/ssh.ts';
import type { VmSpec } from './qemu-args.ts';
import { Qmp } from './qmp.ts';
import {
  findSnapshot,
  markUnusable,
  migrationEnd,
  removeSnapshot,
  resumingSpec,
  SnapshotBootFailed,
  snapshotKey,
  snapshotsDir,
  takeSnapshot,
  UNUSABLE,
} from './snapshot.ts';
import { isPortInUse, QEMU, Vm } from './vm.ts';

/** What a resumed guest prints on its console once its clock is set. */
export const RESUMED_MARKER = 'kmodvm-init: resumed from a snapshot';

/** The shell command that sets a resumed guest's clock to now and says so on its console. Pure. */
export function resumedCommand(now: Date): string {
  const at = `@${(now.getTime() / 1000).toFixed(3)}`;
  return `date -u -s ${posixJoin([at])} >/dev/null && read -r up _ </proc/uptime && echo ${posixJoin([RESUMED_MARKER])}" at \${up}s; clock set to "${posixJoin([now.toISOString()])} >/dev/console`;
}

/** Starts QEMU from a snapshot and returns once SSH is ready and the guest's clock is the host's. */
export async function resumeVm(o: {
  spec: VmSpec;
  privateKey: string;
  hostPublicKey: string;
  deadlineMs: number;
  log: (l: string) => void;
  detached?: { stderrFile: string };
}): Promise<{ vm: Vm; session: SshSession }> {
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
      await settlesWithin(vm.waitExit(), 3000);
      const said = vm.exit?.stderr.trim().split('\n').pop();
      throw new KmodvmError('boot', `the guest did not resume from ${o.spec.incoming} (${vm.alive ? status : `QEMU exited${said ? `: ${said}` : ''}`})`, {
        evidence: vm.alive ? '' : await vm.deathEvidence(),
        hint: 'the snapshot is removed; the next run boots and saves a new one',
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

/**
 * The lean profile's own guest, and the debug kernel's (its initrd kept
 * under a name of its inputs, #27.4), resume from a snapshot; a KVM probe,
 * a kernel of your own, the systemd profile and --no-resume boot.
 */
export function resumable(c: Pick<Config, 'resume' | 'profile'> & { debugKernel?: string }, o: { probeKvm?: boolean; byoInitrd?: string }): boolean {
  return c.resume && c.profile === 'lean' && !o.probeKvm && (c.debugKernel ? Boolean(o.byoInitrd) : !o.byoInitrd);
}

/** The snapshot key of spec on this host (its CPU counts under KVM). */
export async function snapshotKeyHere(spec: VmSpec, o: { imageKey: string; qemuVersion: string }): Promise<string> {
  return snapshotKey(spec, { imageKey: o.imageKey, qemuVersion: o.qemuVersion, hostCpu: await hostCpu() });
}

export async function qemuVersion(): Promise<string> {
  const r = await sh`${QEMU} --version`;
  return r.stdout.split('\n')[0] ?? '';
}

/**
 * The snapshot for key, saved first when there is none, under the key's lock:
 * two first runs do not both save (one would delete the other's, or its
 * rename would fail and mark the key unusable); the second waits and
 * resumes the first's. Undefined when saving failed (logged).
 */
async function findOrSave(o: Parameters<typeof resumeOrSave>[0], key: string): Promise<{ dir: string; how: Resumed['how'] } | undefined> {
  const found = await findSnapshot(o.cacheDir, key, o.log);
  if (found) return { dir: found, how: 'resumed' };
  const onWait = (): void => o.log(`snapshot: another kmodvm is saving this guest (${key}); waiting for it`);
  const lock = { waitS: Math.ceil(o.deadlineMs / 1000) + 120, failure: 'boot' as const, what: `snapshot ${key}`, onWait };
  return withLock(path.join(snapshotsDir(o.cacheDir), `.${key}`), lock, async () => {
    const meanwhile = await findSnapshot(o.cacheDir, key);
    if (meanwhile) return { dir: meanwhile, how: 'resumed' as const };
    o.log(`snapshot: none yet for this image and VM configuration (${key}); booting once to save the guest, which later runs resume`);
    try {
      const dir = await takeSnapshot({
        cacheDir: o.cacheDir,
        key,
        spec: o.spec,
        imageKey: o.imageKey,
        qemuVersion: o.qemuVersion,
        deadlineMs: o.deadlineMs,
        log: o.log,
      });
      return { dir, how: 'saved, then resumed' as const };
    } catch (e) {
      // Another process took the free port between our check and QEMU's bind: nothing wrong with saving; the caller boots on another port.
      if (e instanceof SnapshotBootFailed && isPortInUse(`${e.failure.message}\n${e.failure.evidence ?? ''}`)) {
        o.log('snapshot: the SSH port was taken meanwhile; booting, and saving the guest on a later run');
        return undefined;
      }
      if (e instanceof SnapshotBootFailed && !o.retryBoot(await readFile(e.serialLog, 'utf8').catch(() => ''))) throw e.failure;
      o.log(`snapshot: could not save the guest (${(e as Error).message}); booting without one`);
      // A guest boot that crashed (retried by the caller) says nothing about saving; the machinery failing does.
      if (!(e instanceof SnapshotBootFailed)) await markUnusable(o.cacheDir, key, o.imageKey, `saving: ${(e as Error).message}`);
      return undefined;
    }
  });
}

/**
 * Resumes the guest of spec from its snapshot, saving one first when there
 * is none. Undefined when the snapshot machinery failed (logged; the caller
 * boots); a guest that failed its own boot throws that boot failure, unless
 * retryBoot(its console) says the caller's boot should try again.
 */
export async function resumeOrSave(o: {
  cacheDir: string;
  spec: VmSpec;
  imageKey: string;
  qemuVersion: string;
  privateKey: string;
  hostPublicKey: string;
  deadlineMs: number;
  log: (l: string) => void;
  retryBoot: (serial: string) => boolean;
  detached?: { stderrFile: string };
}): Promise<Resumed | undefined> {
  const key = await snapshotKeyHere(o.spec, o);
  const unusable = path.join(snapshotsDir(o.cacheDir), key, UNUSABLE);
  if (existsSync(unusable)) {
    const why = (JSON.parse(await readFile(unusable, 'utf8').catch(() => '{}')) as { reason?: string }).reason ?? 'unknown';
    o.log(`snapshot: saving or resuming this guest failed on this host before (${why}); booting. Delete ${unusable} to try again`);
    return undefined;
  }
  const saved = await findOrSave(o, key);
  if (!saved) return undefined;
  const { dir, how } = saved;
  try {
    const r = await resumeVm({
      spec: resumingSpec(o.spec, dir),
      privateKey: o.privateKey,
      hostPublicKey: o.hostPublicKey,
      deadlineMs: o.deadlineMs,
      log: o.log,
      detached: o.detached,
    });
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
