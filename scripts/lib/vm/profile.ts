// Boot profiles. `lean` (the default): the uncompressed vmlinux, the tiny
// busybox initrd and kmodvm-init, no systemd. `systemd`: the classic boot,
// Debian's compressed kernel, the stock initramfs-tools initrd and systemd
// as PID 1, for drivers that need udev or systemd (and the benchmark's
// "classic" row).
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config, Profile } from '../core/config.ts';
import type { RunAccel } from '../host/accel.ts';
import type { ImageInfo } from '../image/image.ts';
import { loadDeviceForms } from './device-forms.ts';
import { planDevices } from './devices.ts';
import { QBOOT, type VmSpec } from './qemu-args.ts';

export function bootFiles(
  profile: Profile,
  img: Pick<ImageInfo, 'vmlinux' | 'vmlinuz' | 'initrdLean' | 'initrdStock' | 'cmdline'>,
): Pick<VmSpec, 'kernel' | 'initrd' | 'cmdline'> {
  if (profile === 'systemd') {
    return { kernel: img.vmlinuz, initrd: img.initrdStock, cmdline: [...img.cmdline, 'root=/dev/vda', 'rw', 'init=/lib/systemd/systemd'] };
  }
  // kmodvm.sshd=initrd: the image's own lean initrd starts the image's sshd itself (early-sshd.ts).
  return { kernel: img.vmlinux, initrd: img.initrdLean, cmdline: [...img.cmdline, 'kmodvm.sshd=initrd'] };
}

/** The SSH keys of the sshd a boot logs in to: the lean initrd's own, or (the systemd profile, a kernel of your own with its initrd) the root file system's. */
export function sshKeys(
  c: Pick<Config, 'profile'>,
  img: Pick<ImageInfo, 'clientKey' | 'hostPub' | 'rootfsClientKey' | 'rootfsHostPub'>,
  byo: boolean,
): { clientKey: string; hostPub: string } {
  return c.profile === 'lean' && !byo ? { clientKey: img.clientKey, hostPub: img.hostPub } : { clientKey: img.rootfsClientKey, hostPub: img.rootfsHostPub };
}

/** The VM for a run: its files go in dir (serial.log, qmp.sock). With --kernel-image, byoInitrd is the initrd for that kernel. */
export function guestSpec(
  c: Pick<Config, 'cpus' | 'devices' | 'guestNet' | 'kernelArgs' | 'kernelImage' | 'memoryMiB' | 'profile' | 'root'>,
  img: ImageInfo,
  accel: RunAccel,
  sshPort: number,
  dir: string,
  byoInitrd?: string,
): VmSpec {
  const dev = c.devices.length ? planDevices(c.devices, loadDeviceForms(c.root), dir) : undefined;
  const files = c.kernelImage && byoInitrd ? { kernel: c.kernelImage, initrd: byoInitrd, cmdline: img.cmdline } : bootFiles(c.profile, img);
  return {
    accel,
    cpus: c.cpus,
    memoryMiB: c.memoryMiB,
    ...files,
    // The quiet console (loglevel=5) saves time under TCG only. Under KVM the console costs
    // nothing, and the KVM probe needs the kernel to speak within seconds.
    // The suite's kernel_args come last, so they win over ours.
    cmdline: [...files.cmdline, ...(accel === 'kvm' ? ['loglevel=7'] : []), ...c.kernelArgs],
    rootfs: img.rootfs,
    bios: existsSync(QBOOT) ? QBOOT : undefined,
    sshPort,
    guestNet: c.guestNet,
    serialLog: path.join(dir, 'serial.log'),
    qmpSocket: path.join(dir, 'qmp.sock'),
    devices: dev && { args: dev.args, key: dev.key, channel: dev.channel, scratch: dev.plans.filter((p) => !p.hot && p.scratch).map((p) => p.scratch!) },
  };
}
