// The map of what a kernel leaves out, on Makefiles of Debian's linux-source-6.1 kept as fixtures.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { configsFor, configsOfFile, parseExports, symversNames, undefinedSymbols } from '../../../scripts/lib/build/kernel-exports.ts';

const fx = (n: string): string => readFileSync(new URL(`../../fixtures/kernel-exports/${n}`, import.meta.url), 'utf8');

t.test('an object of a composite: snd-y := … init.o …, obj-$(CONFIG_SND) += snd.o', async (t) => {
  t.same(configsFor(fx('sound-core.Makefile'), 'init.o'), { configs: ['CONFIG_SND'], found: true });
  t.same(configsFor(fx('net-wireless.Makefile'), 'core.o'), { configs: ['CONFIG_CFG80211'], found: true });
  t.same(configsFor(fx('sound-core.Makefile'), 'nothing.o'), { configs: [], found: false });
});

t.test("a composite's conditional part names its own option first", async (t) => {
  const mk = 'obj-$(CONFIG_VIDEO_DEV) += videodev.o\nvideodev-objs := v4l2-dev.o\nvideodev-$(CONFIG_COMPAT) += v4l2-compat-ioctl32.o\n';
  t.same(configsFor(mk, 'v4l2-compat-ioctl32.o').configs, ['CONFIG_COMPAT', 'CONFIG_VIDEO_DEV']);
  t.same(configsFor(mk, 'v4l2-dev.o').configs, ['CONFIG_VIDEO_DEV']);
});

t.test('up the directories: the file, then its directory in the parent Makefile', async (t) => {
  const files: Record<string, string> = {
    '/k/sound/core/Makefile': fx('sound-core.Makefile'),
    '/k/sound/Makefile': 'obj-$(CONFIG_SOUND) += soundcore.o\nobj-$(CONFIG_SND) += core/ i2c/ drivers/\n',
  };
  t.same(await configsOfFile('/k', 'sound/core/init.c', async (f) => files[f]), ['CONFIG_SND']);
  const wl: Record<string, string> = { '/k/net/wireless/Makefile': fx('net-wireless.Makefile'), '/k/net/Makefile': 'obj-$(CONFIG_WIRELESS) += wireless/\n' };
  t.same(await configsOfFile('/k', 'net/wireless/core.c', async (f) => wl[f]), ['CONFIG_CFG80211', 'CONFIG_WIRELESS']);
});

t.test("grep's lines, Module.symvers, and modpost's undefined symbols", async (t) => {
  t.same(parseExports('/k/sound/core/init.c:EXPORT_SYMBOL(snd_card_new\n/k/x.c:EXPORT_SYMBOL_GPL(y\nnoise\n', '/k'), [
    ['sound/core/init.c', 'snd_card_new'],
    ['x.c', 'y'],
  ]);
  t.same([...symversNames('0x1234abcd\tusb_register_driver\tvmlinux\tEXPORT_SYMBOL_GPL\t\n')], ['usb_register_driver']);
  // modpost's own words (6.1), from a build of a sound module against the debug kernel.
  const out =
    'ERROR: modpost: "snd_card_new" [/w/beep/beep.ko] undefined!\nERROR: modpost: "snd_card_free" [/w/beep/beep.ko] undefined!\nmake[2]: *** [scripts/Makefile.modpost:126: /w/beep/Module.symvers] Error 1\n';
  t.same(undefinedSymbols(out), ['snd_card_new', 'snd_card_free']);
});
