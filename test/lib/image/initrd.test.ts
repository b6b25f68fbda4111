import t from 'tap';
import { loadGroups, missingModules, moduleName, parseModulesDep, resolveLoadOrder } from '../../../scripts/lib/image/initrd.ts';

// Lines from the real modules.dep of Debian's 6.1.0-56-amd64.
const DEP = `kernel/fs/ext4/ext4.ko: kernel/lib/crc16.ko kernel/fs/mbcache.ko kernel/fs/jbd2/jbd2.ko
kernel/fs/mbcache.ko:
kernel/fs/jbd2/jbd2.ko:
kernel/lib/crc16.ko:
kernel/crypto/crc32c_generic.ko:
kernel/drivers/virtio/virtio.ko: kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/virtio/virtio_ring.ko:
kernel/drivers/virtio/virtio_pci_legacy_dev.ko:
kernel/drivers/virtio/virtio_pci_modern_dev.ko:
kernel/drivers/virtio/virtio_pci.ko: kernel/drivers/virtio/virtio_pci_legacy_dev.ko kernel/drivers/virtio/virtio_pci_modern_dev.ko kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
kernel/drivers/block/virtio_blk.ko: kernel/drivers/virtio/virtio.ko kernel/drivers/virtio/virtio_ring.ko
`;

t.test('dependencies load first, each once, even when modules.dep lists them flat', async (t) => {
  const order = resolveLoadOrder(parseModulesDep(DEP), ['virtio_pci', 'virtio_blk', 'ext4']).map(moduleName);
  t.same(order, ['virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_ring', 'virtio', 'virtio_pci', 'virtio_blk', 'crc16', 'mbcache', 'jbd2', 'ext4']);
  t.ok(order.indexOf('virtio_ring') < order.indexOf('virtio'), 'virtio needs virtio_ring (the first boot failed on exactly this)');
});

t.test('load groups share no module, so the initrd can load them in parallel', async (t) => {
  const deps = parseModulesDep(DEP);
  const order = resolveLoadOrder(deps, ['virtio_pci', 'virtio_blk', 'crc32c_generic', 'ext4']);
  const groups = loadGroups(deps, order).map((g) => g.map(moduleName));
  t.same(
    groups,
    [
      ['virtio_pci_legacy_dev', 'virtio_pci_modern_dev', 'virtio_ring', 'virtio', 'virtio_pci', 'virtio_blk'],
      ['crc32c_generic'],
      ['crc16', 'mbcache', 'jbd2', 'ext4'],
    ],
    'virtio devices, crc32c and the ext4 chain are independent',
  );
  t.same(groups.flat().sort(), order.map(moduleName).sort(), 'every module in exactly one group');
  // Two chains joined by a shared dependency become one group, in load order.
  const joined = parseModulesDep('a.ko: c.ko\nb.ko: c.ko\nc.ko:\nd.ko:\n');
  t.same(loadGroups(joined, resolveLoadOrder(joined, ['a', 'b', 'd'])), [['c.ko', 'a.ko', 'b.ko'], ['d.ko']]);
});

t.test('module names: compression suffixes and dashes', async (t) => {
  t.equal(moduleName('kernel/a/crc32c-intel.ko.xz'), 'crc32c_intel');
  t.equal(moduleName('x.ko.zst'), 'x');
});

t.test('a module that is neither built nor built in is reported', async (t) => {
  t.same(missingModules(parseModulesDep(DEP), 'kernel/fs/nls/nls_base.ko\n', ['ext4', 'nls_base', 'nosuch']), ['nosuch']);
});

t.test('a dependency cycle is an error, not a hang', async (t) => {
  t.throws(() => resolveLoadOrder(parseModulesDep('a.ko: b.ko\nb.ko: a.ko\n'), ['a']), /cycle: a.ko -> b.ko -> a.ko/);
});
