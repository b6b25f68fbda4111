import t from 'tap';
import {
  accelArgs,
  buildQemuArgs,
  driveArgs,
  escapeOptValue,
  eventsSocketOf,
  firmwareArgs,
  forkArgs,
  netArgs,
  panicArgs,
  type VmSpec,
} from '../../../scripts/lib/vm/qemu-args.ts';

const spec: VmSpec = {
  accel: 'tcg',
  cpus: 2,
  memoryMiB: 1024,
  kernel: '/c/vmlinux',
  initrd: '/c/initrd.cpio',
  cmdline: ['console=ttyS0', 'panic=-1'],
  rootfs: '/c/rootfs.ext4',
  sshPort: 40022,
  serialLog: '/r/serial.log',
  qmpSocket: '/r/qmp.sock',
};

t.test('the SSH forward binds to 127.0.0.1 only', async (t) => {
  t.same(
    netArgs(spec),
    ['-netdev', 'user,id=net0,restrict=on,hostfwd=tcp:127.0.0.1:40022-:22', '-device', 'virtio-net-pci,netdev=net0,romfile='],
    'the guest reaches nothing outside it',
  );
  t.match(netArgs({ ...spec, guestNet: true })[1], /restrict=off/, '--guest-net lifts it');
});

t.test('TCG uses qemu64+rdrand, KVM the host CPU', async (t) => {
  t.same(accelArgs('tcg'), ['-machine', 'q35', '-accel', 'tcg', '-cpu', 'qemu64,+rdrand']);
  t.same(accelArgs('kvm'), ['-machine', 'q35', '-accel', 'kvm', '-cpu', 'host']);
});

t.test('the disk is a snapshot, and commas in paths are doubled', async (t) => {
  t.same(driveArgs({ rootfs: '/a,b/r.ext4' }), ['-drive', 'file=/a,,b/r.ext4,if=virtio,format=raw,cache=unsafe', '-snapshot']);
  t.same(
    driveArgs({ rootfs: '/c/rootfs.qcow2' }),
    ['-drive', 'file=/c/rootfs.qcow2,if=virtio,format=qcow2,cache=unsafe', '-snapshot'],
    'the compressed image is qcow2',
  );
  t.equal(escapeOptValue('x,y,,z'), 'x,,y,,,,z');
});

t.test('a snapshot being saved writes into its own overlay: no -snapshot layer', async (t) => {
  t.same(driveArgs({ rootfs: '/s/disk.qcow2', keepDiskWrites: true }), ['-drive', 'file=/s/disk.qcow2,if=virtio,format=qcow2,cache=unsafe']);
});

t.test('a forkable guest has the VM generation ID device; a resumed one reads its state from the inherited fd', async (t) => {
  t.same(forkArgs({}), []);
  t.same(forkArgs({ forkable: true }), ['-device', 'vmgenid']);
  t.same(forkArgs({ forkable: true, incomingFd: 3 }), ['-device', 'vmgenid', '-incoming', 'fd:3']);
  const a = buildQemuArgs({ ...spec, forkable: true, incoming: '/s/state', incomingFd: 3 });
  t.same(a.slice(a.indexOf('-incoming'), a.indexOf('-incoming') + 2), ['-incoming', 'fd:3']);
  t.notOk(
    a.some((x) => x.includes('/s/state')),
    'the state file is passed as a descriptor, not named on the command line',
  );
});

t.test('the full command: panic ends QEMU, kernel booted directly, input untouched', async (t) => {
  const frozen = Object.freeze({ ...spec, cmdline: Object.freeze([...spec.cmdline]) });
  const a = buildQemuArgs(frozen);
  t.ok(a.includes('-no-reboot'));
  t.ok(a.includes('-nodefaults'));
  t.same(a.slice(a.indexOf('-kernel'), a.indexOf('-kernel') + 6), ['-kernel', '/c/vmlinux', '-initrd', '/c/initrd.cpio', '-append', 'console=ttyS0 panic=-1']);
  t.same(a.slice(a.indexOf('-serial'), a.indexOf('-serial') + 2), ['-serial', 'file:/r/serial.log']);
  t.not(buildQemuArgs(frozen), a, 'a fresh array each call');
  t.same(buildQemuArgs(frozen), a);
});

t.test('firmware: qboot when given, the QEMU default otherwise', async (t) => {
  t.same(firmwareArgs({ bios: '/usr/share/qemu/qboot.rom' }), ['-bios', '/usr/share/qemu/qboot.rom']);
  t.same(firmwareArgs({}), []);
  const a = buildQemuArgs({ ...spec, bios: '/q.rom' });
  t.same(a.slice(a.indexOf('-bios'), a.indexOf('-bios') + 2), ['-bios', '/q.rom']);
  t.notOk(buildQemuArgs(spec).includes('-bios'));
});

t.test('every guest has pvpanic and vmcoreinfo (off the PCI bus) and a second QMP monitor beside the first, for the crash-dump watcher', async (t) => {
  t.equal(eventsSocketOf('/r/qmp.sock'), '/r/events.sock');
  t.same(panicArgs({ qmpSocket: '/r,x/qmp.sock' }), [
    '-device',
    'pvpanic',
    '-device',
    'vmcoreinfo',
    '-chardev',
    'socket,id=kmodvm-events,path=/r,,x/events.sock,server=on,wait=off',
    '-mon',
    'chardev=kmodvm-events,mode=control',
  ]);
  const a = buildQemuArgs(spec);
  t.ok(a.join(' ').includes('-device pvpanic -device vmcoreinfo'), 'in the full command');
  t.notOk(a.includes('-action'), "QEMU's own panic action (shutdown) unless --dump sets pause over QMP");
});
