// The debug kernel's recipe and its kconfig check, against the shipped recipe and the
// .config that `make tinyconfig`, merge_config.sh with the fragment and `make olddefconfig`
// really made from Debian's linux-source-6.1 (test/fixtures/debug-kernel/).
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { buildCommands, debugKernelKey, installCommand, loadDebugRecipe, parseKconfig, unmetOptions } from '../../../scripts/lib/build/debug-recipe.ts';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';

const root = new URL('../../..', import.meta.url).pathname;
const finalConfig = readFileSync(new URL('../../fixtures/debug-kernel/6.1-tinyconfig-fragment.config', import.meta.url), 'utf8');

t.test('the shipped recipe: every option its fragment asks for is in the .config kconfig made', async (t) => {
  const r = loadDebugRecipe(root, 'debian-12-debug');
  t.equal(r.image, 'debian-12');
  t.same(unmetOptions(r.fragmentText, finalConfig), []);
  const got = parseKconfig(finalConfig);
  for (const k of [
    'KASAN',
    'KASAN_GENERIC',
    'KASAN_STACK',
    'KFENCE',
    'DEBUG_KMEMLEAK',
    'PROVE_LOCKING',
    'DEBUG_ATOMIC_SLEEP',
    'UBSAN',
    'FAILSLAB',
    'DEBUG_INFO',
    'VIRTIO_BLK',
    'EXT4_FS',
  ])
    t.equal(got.get(`CONFIG_${k}`), 'y', k);
  t.equal(got.get('CONFIG_SLOB'), 'n', '`# CONFIG_SLOB is not set` reads as n');
});

t.test("debian-13-debug: the shared fragment, then its own (6.12's tinyconfig picks SLUB_TINY), and every option is in the .config 6.12 made", async (t) => {
  // The .config of the real build from Debian's linux-source-6.12 (trixie), 2026-12-04.
  const config612 = readFileSync(new URL('../../fixtures/debug-kernel/6.12-tinyconfig-fragment.config', import.meta.url), 'utf8');
  const r = loadDebugRecipe(root, 'debian-13-debug');
  t.same([r.image, r.suite, r.sourcePackage], ['debian-13', 'trixie', 'linux-source-6.12']);
  t.same(r.fragment, ['debian-12-debug.config', 'debian-13-debug.config']);
  t.equal(parseKconfig(r.fragmentText).get('CONFIG_SLUB_TINY'), 'n', 'its own file, merged after the shared one');
  t.same(unmetOptions(r.fragmentText, config612), []);
  t.same(
    unmetOptions(r.fragmentText, config612.replace('# CONFIG_SLUB_TINY is not set', 'CONFIG_SLUB_TINY=y').replace('CONFIG_KASAN=y\n', '')),
    ['CONFIG_KASAN: asked for y, got n (absent)', 'CONFIG_SLUB_TINY: asked for n, got y'],
    "what the first try gave: tinyconfig's SLUB_TINY, and KASAN gone with it",
  );
  t.not(debugKernelKey(r, 'gcc 12'), debugKernelKey(loadDebugRecipe(root, 'debian-12-debug'), 'gcc 12'));
});

t.test('an option kconfig dropped is named, with what it became', async (t) => {
  // What the first try gave: tinyconfig's SLOB, which KASAN cannot use, so KASAN silently stayed off.
  const slob = finalConfig.replace('CONFIG_KASAN=y', '# CONFIG_KASAN is not set').replace('CONFIG_FAILSLAB=y\n', '');
  t.same(unmetOptions('CONFIG_KASAN=y\nCONFIG_FAILSLAB=y\nCONFIG_SLUB=y\n', slob), [
    'CONFIG_KASAN: asked for y, got n',
    'CONFIG_FAILSLAB: asked for y, got n (absent)',
  ]);
});

t.test('the build: the base config, the fragment merged, olddefconfig, then bzImage and modules in the tree', async (t) => {
  const r = loadDebugRecipe(root, 'debian-12-debug');
  const cmds = buildCommands(r, { tree: '/k/build', fragmentFile: '/k/build/.kmodvm-fragment.config', jobs: 2 });
  t.same(
    cmds.map(([c, a]) => [path.basename(c), ...a].join(' ')),
    [
      'make -C /k/build ARCH=x86_64 tinyconfig',
      'merge_config.sh -m -O /k/build /k/build/.config /k/build/.kmodvm-fragment.config',
      'make -C /k/build ARCH=x86_64 olddefconfig',
      'make -C /k/build ARCH=x86_64 -j2 bzImage modules',
    ],
  );
  const [make, args] = installCommand('/k/build');
  t.equal([make, ...args].join(' '), 'make -C /k/build ARCH=x86_64 INSTALL_MOD_PATH=/k/build/.kmodvm-modules INSTALL_MOD_STRIP=1 modules_install');
});

t.test('the key changes with the fragment and with the host compiler', async (t) => {
  const r = loadDebugRecipe(root, 'debian-12-debug');
  const k = debugKernelKey(r, '12.2.0');
  t.equal(debugKernelKey(r, '12.2.0'), k);
  t.not(debugKernelKey(r, '13.1.0'), k);
  t.not(debugKernelKey({ ...r, fragmentText: `${r.fragmentText}CONFIG_KCSAN=y\n` }, '12.2.0'), k);
});

t.test('a bad recipe: exit 2 with the file, the line and the field', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-dk-'));
  mkdirSync(path.join(dir, 'qemu/debug-kernels'), { recursive: true });
  cpSync(path.join(root, 'qemu/debug-kernels/debian-12-debug.config'), path.join(dir, 'qemu/debug-kernels/debian-12-debug.config'));
  const good = JSON.parse(readFileSync(path.join(root, 'qemu/debug-kernels/debian-12-debug.json'), 'utf8'));
  writeFileSync(path.join(dir, 'qemu/debug-kernels/x.json'), JSON.stringify({ ...good, configBase: ['tinyconfig', 'rm -rf /'] }, null, 2));
  const e = (() => {
    try {
      loadDebugRecipe(dir, 'x');
    } catch (err) {
      return err as KmodvmError;
    }
  })();
  t.ok(e instanceof KmodvmError);
  t.equal(e?.failure, 'usage');
  t.match(e?.message, /x\.json:\d+.*configBase/);
  writeFileSync(path.join(dir, 'qemu/debug-kernels/y.json'), JSON.stringify({ ...good, fragment: 'missing.config' }));
  t.throws(() => loadDebugRecipe(dir, 'y'), /field `fragment`: cannot read/);
});
