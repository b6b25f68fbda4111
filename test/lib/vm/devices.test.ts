import { readFileSync } from 'node:fs';
import t from 'tap';
import { loadDeviceForms } from '../../../scripts/lib/vm/device-forms.ts';
import { type DeviceDecl, declOf, helpProps, parseDeviceSpec, planDevices, portCount } from '../../../scripts/lib/vm/devices.ts';
import { portAddress } from '../../../scripts/lib/vm/hotplug.ts';
import { deviceArgs } from '../../../scripts/lib/vm/qemu-args.ts';

const forms = loadDeviceForms();
const decl = (s: string): DeviceDecl => {
  const d = declOf(s);
  if (typeof d === 'string') throw new Error(d);
  return d;
};

t.test('a -device spec: the driver, its properties, a doubled comma a literal one', async (t) => {
  t.same(parseDeviceSpec('edu,id=e0,dma_mask=0xfffffff'), {
    driver: 'edu',
    props: [
      ['id', 'e0'],
      ['dma_mask', '0xfffffff'],
    ],
  });
  t.same(parseDeviceSpec('x,serial=a,,b'), { driver: 'x', props: [['serial', 'a,b']] });
  t.match(parseDeviceSpec('edu,oops'), /"oops" is not key=value/);
  t.match(declOf('edu'), /needs an id/);
  t.match(declOf('edu,id=kmodvm-port0'), /not start with kmodvm/);
  t.match(declOf('edu,id=0bad'), /must be a letter/);
  t.match(declOf('e1000e,id=n,romfile=/etc/shadow'), /may not name a host file/, "the suite's code names no host file for QEMU to read");
  t.match(declOf('virtio-net-pci,id=n,netdev=net0'), /kmodvm's own backends/, "nor kmodvm's SSH forward");
  t.type(declOf('virtio-net-pci,id=n,romfile='), 'object', 'an empty romfile (no option ROM) is fine');
});

t.test('PCI short forms are hot: root ports in fours, device_add into them, the backend first', async (t) => {
  const s = planDevices([decl('edu,id=e0'), decl('nvme,id=n0'), decl('e1000e,id=net1')], forms, '/run/x');
  t.equal(portCount(3), 4);
  t.same(s.key, ['ports=4', 'channel'], 'the saved guest is keyed by the number of ports only (and the device-request port): every hot set shares it');
  t.equal(s.channel, true);
  t.ok(s.args.includes('virtserialport,bus=kmodvm-vser.0,chardev=kmodvm-devchan,name=org.kmodvm.device'), "kmodvm-device's port, with the hot devices");
  t.same(deviceArgs({ devices: s, qmpSocket: '/run/x/qmp.sock' }).slice(0, 2), [
    '-chardev',
    'socket,id=kmodvm-devchan,path=/run/x/device.sock,server=on,wait=off',
  ]);
  t.equal(s.args.filter((a) => a.startsWith('pcie-root-port')).length, 4);
  const nvme = s.plans.find((p) => p.decl.id === 'n0')!;
  t.ok(nvme.hot);
  t.same(
    nvme.plug.map((c) => c.execute),
    ['blockdev-add', 'device_add'],
  );
  t.match(nvme.plug[1].arguments, { driver: 'nvme', id: 'n0', bus: 'kmodvm-port1', drive: 'kmodvm-n0-file', serial: 'n0' });
  t.same(nvme.scratch, { file: '/run/x/device-n0.img', bytes: 64 * 2 ** 20 });
  t.same(
    nvme.unplugBackend.map((c) => c.execute),
    ['blockdev-del'],
  );
  const net = s.plans.find((p) => p.decl.id === 'net1')!;
  t.match(net.plug[0], { execute: 'netdev_add', arguments: { type: 'user', restrict: true } }, 'a restricted user netdev: the NIC reaches nothing');
});

t.test('USB devices and unknown specs are cold, at boot, in the key; USB gets a controller, listed first', async (t) => {
  const s = planDevices([decl('usb-kbd,id=k'), decl('virtio-rng-pci,id=rng')], forms, '/run/x');
  t.same(s.key, ['qemu-xhci,id=kmodvm-usb', 'usb-kbd,id=k', 'virtio-rng-pci,id=rng']);
  t.same(s.args, ['-device', 'qemu-xhci,id=kmodvm-usb', '-device', 'usb-kbd,id=k,bus=kmodvm-usb.0', '-device', 'virtio-rng-pci,id=rng']);
  const own = planDevices([decl('usb-storage,id=u'), decl('usb-ehci,id=ehci')], forms, '/run/y');
  t.same(own.args.slice(0, 2), ['-device', 'usb-ehci,id=ehci'], "the suite's own controller goes first, cold (its devices hang on it)");
  t.match(
    own.args.join(' '),
    /-blockdev driver=file,filename=\/run\/y\/device-u.img,node-name=kmodvm-u-file -device usb-storage,id=u,drive=kmodvm-u-file,bus=ehci.0/,
  );
  t.notOk(own.plans.find((p) => p.decl.id === 'ehci')!.hot);
});

t.test('CAN cards share one bus, made at boot', async (t) => {
  const s = planDevices([decl('kvaser_pci,id=can0'), decl('ctucan_pci,id=can1')], forms, '/r');
  t.same(s.args.slice(-2), ['-object', 'can-bus,id=kmodvm-canbus']);
  t.match(s.plans[0].plug.at(-1)!.arguments, { canbus: 'kmodvm-canbus' });
  t.match(s.plans[1].plug.at(-1)!.arguments, { canbus0: 'kmodvm-canbus' });
});

t.test("a hot device's guest address: its root port's secondary bus (query-pci, recorded from QEMU 7.2)", async (t) => {
  const q = JSON.parse(readFileSync(new URL('../../fixtures/devices/query-pci-7.2.json', import.meta.url), 'utf8'));
  t.equal(portAddress(q, 'rp1'), '0000:02:00.0', 'the guest numbered the ports in its own order');
  t.equal(portAddress(q, 'rp2'), '0000:01:00.0');
  t.equal(portAddress(q, 'nosuch'), undefined);
});

t.test('the properties a -device NAME,help listing names', async (t) => {
  const help = 'edu options:\n  acpi-index=<uint32>    -  (default: 0)\n  addr=<int32>           - Slot\n  dma_mask=<uint64>\n';
  t.same([...helpProps(help)], ['acpi-index', 'addr', 'dma_mask']);
});
