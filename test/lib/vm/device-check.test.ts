// QEMU itself says which devices and properties it takes, before anything boots (#25).
import t from 'tap';
import { checkDevicesWithQemu } from '../../../scripts/lib/vm/device-check.ts';
import { type DeviceDecl, declOf } from '../../../scripts/lib/vm/devices.ts';

const at = (spec: string, line: number): DeviceDecl => ({
  ...(declOf(spec) as DeviceDecl),
  where: { file: '/s/kmodvm.yaml', line, field: `devices[${line}]` },
});

t.test("an unknown device: QEMU's words, the file, the line and the field, exit 2", async (t) => {
  const e = await checkDevicesWithQemu([at('edu,id=e0', 3), at('nosuchdev,id=x', 4)]);
  t.equal(e?.failure, 'usage');
  t.match(e?.message, /^\/s\/kmodvm\.yaml:4: devices\[4\]: QEMU does not take nosuchdev,id=x: .*Device 'nosuchdev' not found/);
});

t.test('an unknown property of a known device', async (t) => {
  const e = await checkDevicesWithQemu([at('edu,id=e0,dmamask=1', 7)]);
  t.match(e?.message, /kmodvm\.yaml:7: .*QEMU's edu has no property dmamask/);
  t.equal(await checkDevicesWithQemu([at('edu,id=e0,dma_mask=0xfffffff', 1), at('nvme,id=n,serial=x', 2)]), undefined, 'known ones pass');
});
