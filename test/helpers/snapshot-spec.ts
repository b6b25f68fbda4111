// The lean guest's VmSpec and the ids a snapshot is keyed by, shared by
// snapshot.test.ts and resume.test.ts (frozen: the code under test must not mutate it).
import type { VmSpec } from '../../scripts/lib/vm/qemu-args.ts';

export const spec: VmSpec = Object.freeze({
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 1024,
  kernel: '/img/vmlinux',
  initrd: '/img/initrd-lean.cpio',
  cmdline: Object.freeze(['console=ttyS0', 'kmodvm.sshd=initrd']),
  rootfs: '/img/rootfs.qcow2',
  sshPort: 40022,
  serialLog: '/run/serial.log',
  qmpSocket: '/run/qmp.sock',
  bios: '/usr/share/qemu/qboot.rom',
}) as VmSpec;
export const ids = { imageKey: 'abc', qemuVersion: 'QEMU emulator version 7.2.22' };
