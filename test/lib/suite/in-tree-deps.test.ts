import { readFileSync } from 'node:fs';
import t from 'tap';
import { dependsStep, modCDepends, modprobeRemoveStep, modprobeStep, parseDepends } from '../../../scripts/lib/suite/in-tree-deps.ts';

const fx = readFileSync(new URL('../../fixtures/in-tree-deps/uas-alauda-stub.stdout', import.meta.url), 'utf8');
const k = '/lib/modules/6.1.0-57-amd64/kernel/drivers';
const mod = (name: string, ko: string) => ({ name, guestKo: `${k}/${ko}`, params: [] });
const timeouts = { boot: 180, build: 600, load: 60, app: 60, command: 60 };

t.test("the kernel's modules the suite's need, in the order first named, each with who needs it; the suite's own left out", async (t) => {
  const deps = parseDepends(fx, [mod('uas', 'usb/storage/uas.ko'), mod('ums_alauda', 'usb/storage/ums-alauda.ko'), mod('i2c_stub', 'i2c/i2c-stub.ko')]);
  t.same(
    deps.map((d) => [d.name, d.neededBy, d.present]),
    [
      ['usbcore', ['uas', 'ums_alauda'], false],
      ['scsi_mod', ['uas'], false],
      ['scsi_common', ['uas'], false],
      ['usb_storage', ['uas', 'ums_alauda'], false],
    ],
  );
});

t.test("a dependency that is one of the suite's own modules is loaded by insmod, in the suite's order, not modprobe", async (t) => {
  const deps = parseDepends(fx, [mod('usb_storage', 'usb/storage/usb-storage.ko'), mod('uas', 'usb/storage/uas.ko')]);
  t.notOk(
    deps.some((d) => d.name === 'usb_storage'),
    "usb-storage (with a dash in depends=) is the suite's usb_storage",
  );
});

t.test('a module the kernel already has (loaded at boot) is neither loaded nor removed', async (t) => {
  const deps = parseDepends(`${k}/x.ko\t8250,usbcore\nloaded 8250\n`, [mod('x', 'x.ko')]);
  t.same(
    deps.map((d) => [d.name, d.present]),
    [
      ['8250', true],
      ['usbcore', false],
    ],
  );
});

t.test('the guest commands: one probe for every module, modprobe and modprobe -r as load steps', async (t) => {
  const s = dependsStep([mod('a', 'a.ko'), mod('b', 'b.ko')], timeouts);
  t.same(s.argv.slice(-2), [`${k}/a.ko`, `${k}/b.ko`], 'the .ko paths are arguments, not shell text');
  t.same(modprobeStep({ name: 'usbcore', neededBy: ['a'], present: false }, timeouts).argv, ['modprobe', 'usbcore']);
  t.same(modprobeRemoveStep('usbcore', timeouts).argv, ['modprobe', '-r', 'usbcore']);
  t.equal(modprobeStep({ name: 'x', neededBy: [], present: false }, timeouts).failure, 'load');
});

t.test("kbuild's own record of a host build's depends (.mod.c), so a module that needs nothing costs no guest step", async (t) => {
  const read = (f: string): string => readFileSync(new URL(`../../fixtures/${f}`, import.meta.url), 'utf8');
  t.same(modCDepends(read('in-tree-deps/delta.mod.c.txt')), ['usb_common']);
  t.same(modCDepends(read('kbuild-6.1/netlink_simple_intf.mod.c.txt')), [], 'the netlink demo needs nothing');
  t.equal(modCDepends('int x;'), undefined, 'no depends line: ask the guest');
});
