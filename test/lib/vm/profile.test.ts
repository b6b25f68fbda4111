import t from 'tap';
import { defaultConfig } from '../../../scripts/lib/core/config.ts';
import type { ImageInfo } from '../../../scripts/lib/image/image.ts';
import { bootFiles, guestSpec } from '../../../scripts/lib/vm/profile.ts';

const img = {
  vmlinux: '/i/vmlinux',
  vmlinuz: '/i/vmlinuz',
  initrdLean: '/i/lean.cpio',
  initrdStock: '/i/initrd.img',
  rootfs: '/i/rootfs.qcow2',
  cmdline: ['console=ttyS0', 'panic=-1', 'loglevel=5'],
} as unknown as ImageInfo;

t.test('lean boots the uncompressed vmlinux and the lean initrd; systemd the stock pair with systemd as init', async (t) => {
  t.same(
    bootFiles('lean', img),
    { kernel: '/i/vmlinux', initrd: '/i/lean.cpio', cmdline: ['console=ttyS0', 'panic=-1', 'loglevel=5', 'kmodvm.sshd=initrd'] },
    "the image's own initrd starts its sshd",
  );
  t.notOk(bootFiles('systemd', img).cmdline.includes('kmodvm.sshd=initrd'));
  const sd = bootFiles('systemd', img);
  t.equal(sd.kernel, '/i/vmlinuz');
  t.equal(sd.initrd, '/i/initrd.img');
  t.same(sd.cmdline.slice(-3), ['root=/dev/vda', 'rw', 'init=/lib/systemd/systemd']);
});

t.test('the quiet console is for TCG only: under KVM the kernel speaks, which the KVM probe needs', async (t) => {
  const c = defaultConfig({});
  t.same(guestSpec(c, img, 'tcg', 2222, '/r').cmdline, ['console=ttyS0', 'panic=-1', 'loglevel=5', 'kmodvm.sshd=initrd']);
  t.same(guestSpec(c, img, 'kvm', 2222, '/r').cmdline.slice(-1), ['loglevel=7'], 'the later loglevel wins on the kernel command line');
  t.same(img.cmdline, ['console=ttyS0', 'panic=-1', 'loglevel=5'], "the image's command line is not mutated");
});

t.test("a kernel of your own boots without the early sshd: its initrd is not this image's", async (t) => {
  const c = { ...defaultConfig({}), kernelImage: '/k/bzImage' };
  const spec = guestSpec(c, img, 'tcg', 2222, '/r', '/k/initrd.cpio');
  t.equal(spec.initrd, '/k/initrd.cpio');
  t.notOk(spec.cmdline.includes('kmodvm.sshd=initrd'));
});
