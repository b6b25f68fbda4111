// QEMU's command line, from small pure functions that each return a fresh
// string[] and never touch their input. buildQemuArgs() only concatenates.
import path from 'node:path';
import type { RunAccel } from '../host/accel.ts';
import { CHANNEL_CHARDEV } from './devices.ts';

export interface VmSpec {
  accel: RunAccel;
  cpus: number;
  memoryMiB: number;
  kernel: string;
  initrd: string;
  cmdline: readonly string[];
  rootfs: string;
  /** Host port forwarded to the guest's 22, bound to 127.0.0.1 only. */
  sshPort: number;
  serialLog: string;
  /** QMP socket path, for a clean quit and for evidence on a hang. */
  qmpSocket: string;
  /** The disk's writes go into rootfs itself (a snapshot's own overlay being made), not into a throwaway -snapshot layer. Default false. */
  keepDiskWrites?: boolean;
  /** With QEMU's VM generation ID device, so a guest resumed from a snapshot reseeds its random number generator (scripts/lib/vm/snapshot.ts). */
  forkable?: boolean;
  /** Resume from this migration stream file instead of booting: QEMU inherits it as incomingFd (-incoming fd:N). */
  incoming?: string;
  incomingFd?: number;
  /** The guest may reach the host's network (restrict=off). Default false: only the SSH forward. */
  guestNet?: boolean;
  /** Firmware. qboot (QEMU's minimal BIOS) starts the kernel about 0.7 s sooner than SeaBIOS under TCG. Default: QEMU's own. */
  bios?: string;
  /** The suite's cold devices and kmodvm's root ports for its hot ones (vm/devices.ts): their arguments, and what the saved guest is keyed by (never a path). */
  devices?: { args: readonly string[]; key: readonly string[]; scratch?: readonly { file: string; bytes: number }[]; channel?: boolean };
}

/** Where Debian's and Ubuntu's qemu-system-data put qboot. */
export const QBOOT = '/usr/share/qemu/qboot.rom';

export function firmwareArgs(s: Pick<VmSpec, 'bios'>): string[] {
  return s.bios ? ['-bios', s.bios] : [];
}

/** QEMU splits option values on commas; a literal comma is written twice. */
export function escapeOptValue(v: string): string {
  return v.replace(/,/g, ',,');
}

export function baseArgs(): string[] {
  return ['-nodefaults', '-no-user-config', '-display', 'none', '-no-reboot'];
}

/** KVM uses the host CPU. TCG uses qemu64 plus rdrand: sshd would otherwise wait
 *  seconds for entropy, and `-cpu max` is about 30% slower under TCG. */
export function accelArgs(accel: RunAccel): string[] {
  return accel === 'kvm' ? ['-machine', 'q35', '-accel', 'kvm', '-cpu', 'host'] : ['-machine', 'q35', '-accel', 'tcg', '-cpu', 'qemu64,+rdrand'];
}

export function sizeArgs(s: Pick<VmSpec, 'cpus' | 'memoryMiB'>): string[] {
  return ['-smp', String(s.cpus), '-m', String(s.memoryMiB)];
}

export function kernelArgs(s: Pick<VmSpec, 'kernel' | 'initrd' | 'cmdline'>): string[] {
  return ['-kernel', s.kernel, '-initrd', s.initrd, '-append', s.cmdline.join(' ')];
}

/** The root disk, opened with -snapshot so the cached image stays pristine (unless a snapshot's overlay is being written). */
export function driveArgs(s: Pick<VmSpec, 'rootfs' | 'keepDiskWrites'>): string[] {
  // A compressed qcow2 (the image's own) is decompressed by QEMU on the host, at native speed.
  const format = s.rootfs.endsWith('.qcow2') ? 'qcow2' : 'raw';
  const drive = ['-drive', `file=${escapeOptValue(s.rootfs)},if=virtio,format=${format},cache=unsafe`];
  return s.keepDiskWrites ? drive : [...drive, '-snapshot'];
}

/** A guest that can be snapshotted and resumed: Linux (≥ 5.18) reseeds its RNG when the generation ID changes, so no two resumed guests share random numbers. */
export function forkArgs(s: Pick<VmSpec, 'forkable' | 'incomingFd'>): string[] {
  return [...(s.forkable ? ['-device', 'vmgenid'] : []), ...(s.incomingFd !== undefined ? ['-incoming', `fd:${s.incomingFd}`] : [])];
}

/**
 * User networking, restricted: the guest reaches nothing outside it (not
 * 10.0.2.2, which is the host's 127.0.0.1, nor the LAN); only the SSH
 * forward comes in, and it listens on 127.0.0.1 only. --guest-net lifts the
 * restriction. No option ROM: the kernel is booted directly.
 */
export function netArgs(s: Pick<VmSpec, 'sshPort' | 'guestNet'>): string[] {
  return [
    '-netdev',
    `user,id=net0,restrict=${s.guestNet ? 'off' : 'on'},hostfwd=tcp:127.0.0.1:${s.sshPort}-:22`,
    '-device',
    'virtio-net-pci,netdev=net0,romfile=',
  ];
}

export function consoleArgs(s: Pick<VmSpec, 'serialLog' | 'qmpSocket'>): string[] {
  return [
    '-serial',
    `file:${escapeOptValue(s.serialLog)}`,
    '-qmp',
    `unix:${escapeOptValue(s.qmpSocket)},server=on,wait=off`,
    // QEMU's gdb stub, on a unix socket in the guest's own 0700 directory, never on TCP (kmodvm gdb, test --gdb).
    '-gdb',
    `unix:${escapeOptValue(gdbSocketOf(s.qmpSocket))},server=on,wait=off`,
  ];
}

/** The gdb stub's socket, beside the QMP socket (debug/gdb.ts). */
export const gdbSocketOf = (qmpSocket: string): string => path.join(path.dirname(qmpSocket), 'gdb.sock');

/** The socket of kmodvm's device-request port: beside the QMP socket (a run's, or a saved guest's own). */
export const deviceSocketOf = (qmpSocket: string): string => path.join(path.dirname(qmpSocket), 'device.sock');

/** The second QMP monitor, beside the first: kmodvm's crash-dump watcher holds it for the guest's life (debug/dump.ts), the first stays free for short commands. */
export const eventsSocketOf = (qmpSocket: string): string => path.join(path.dirname(qmpSocket), 'events.sock');

/**
 * What a crash dump needs, on every guest so that a saved one has it too:
 * the pvpanic device, through which the guest kernel tells QEMU it panicked
 * (QEMU's default action, shutdown, ends QEMU as panic=-1 did; --dump sets
 * pause over QMP), vmcoreinfo, where the kernel leaves what crash and drgn
 * read a dump with, and the watcher's monitor. Neither device is on the PCI
 * bus: the suite's devices keep their addresses.
 */
export function panicArgs(s: Pick<VmSpec, 'qmpSocket'>): string[] {
  return [
    '-device',
    'pvpanic',
    '-device',
    'vmcoreinfo',
    '-chardev',
    `socket,id=kmodvm-events,path=${escapeOptValue(eventsSocketOf(s.qmpSocket))},server=on,wait=off`,
    '-mon',
    'chardev=kmodvm-events,mode=control',
  ];
}

export function deviceArgs(s: Pick<VmSpec, 'devices' | 'qmpSocket'>): string[] {
  const chan = s.devices?.channel ? ['-chardev', `socket,id=${CHANNEL_CHARDEV},path=${escapeOptValue(deviceSocketOf(s.qmpSocket))},server=on,wait=off`] : [];
  return [...chan, ...(s.devices?.args ?? [])];
}

export function buildQemuArgs(s: VmSpec): string[] {
  return [
    ...baseArgs(),
    ...accelArgs(s.accel),
    ...sizeArgs(s),
    ...firmwareArgs(s),
    ...kernelArgs(s),
    ...driveArgs(s),
    ...netArgs(s),
    ...forkArgs(s),
    ...deviceArgs(s),
    ...consoleArgs(s),
    ...panicArgs(s),
  ];
}
