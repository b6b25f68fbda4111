import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../../scripts/lib/core/flags.ts';
import { imageKey } from '../../../scripts/lib/image/image.ts';
import { applyPrune, keptKeys, planPrune, prunePlan } from '../../../scripts/lib/loop/prune.ts';
import { writeState } from '../../../scripts/lib/vm/instance.ts';

const root = path.join(import.meta.dirname, '../../..');

t.test('the plan removes what no kept key names, and build leftovers; it keeps the rest with the reason', async (t) => {
  const keep = new Map([
    ['aaaa', 'the image of qemu/kernels/debian-12.json'],
    ['cccc', 'instance lab runs it'],
  ]);
  const plan = planPrune({
    imagesDir: '/c/images',
    images: ['bbbb', 'aaaa', '.tmp-1234', 'cccc'],
    recordsDir: '/c/kbuild-records',
    records: ['aaaa', 'dddd'],
    keep,
    alive: () => false,
  });
  t.same(plan.keep, [
    { path: '/c/images/aaaa', why: 'the image of qemu/kernels/debian-12.json' },
    { path: '/c/images/cccc', why: 'instance lab runs it' },
  ]);
  t.same(
    plan.remove.map((r) => r.path),
    ['/c/images/.tmp-1234', '/c/images/bbbb', '/c/kbuild-records/dddd'],
  );
  t.match(plan.remove[0].why, /interrupted image build/);
  t.match(plan.remove[1].why, /no longer has/);
  t.match(plan.remove[2].why, /kbuild records/);
  t.same(planPrune({ imagesDir: '/c/images', images: [], recordsDir: '/c/r', records: [], keep }).remove, [], 'an empty cache: nothing to do');
});

t.test('saved guests go with their image, and so do interrupted saves and ones without a meta.json', async (t) => {
  const keep = new Map([['aaaa', 'the image of qemu/kernels/debian-12.json']]);
  const plan = planPrune({
    imagesDir: '/c/images',
    images: [],
    recordsDir: '/c/r',
    records: [],
    keep,
    snapshotsDir: '/c/snapshots',
    snapshots: [{ name: 's1', imageKey: 'aaaa' }, { name: 's2', imageKey: 'bbbb' }, { name: 's3.tmp-77' }, { name: 's4' }],
    alive: () => false,
  });
  t.same(
    plan.remove.map((r) => [r.path, r.why]),
    [
      ['/c/snapshots/s2', 'a saved guest of an image that is gone or pruned'],
      ['/c/snapshots/s3.tmp-77', 'the leftover of an interrupted snapshot save'],
      ['/c/snapshots/s4', 'a saved guest of an image that is gone or pruned'],
    ],
  );
});

t.test("another run's work is never pruned: its locks, and the temporary directory of a build or save that still runs", async (t) => {
  const plan = planPrune({
    imagesDir: '/c/images',
    images: ['.tmp-aaaa-4242', '.tmp-aaaa-77', '.aaaa.lock'],
    recordsDir: '/c/r',
    records: [],
    keep: new Map(),
    snapshotsDir: '/c/snapshots',
    snapshots: [{ name: 'k1.tmp-4242' }, { name: '.k1.lock' }],
    alive: (pid) => pid === 4242,
  });
  t.same(
    plan.remove.map((r) => r.path),
    ['/c/images/.tmp-aaaa-77'],
    'only the dead process leftover',
  );
});

t.test('kept: every shipped recipe, the configured recipe of your own, and running instances', async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-prune-'));
  const mine = path.join(cache, 'mine.json');
  const base = JSON.parse(readFileSync(path.join(root, 'qemu/kernels/debian-12.json'), 'utf8')) as { packages: string[] };
  writeFileSync(mine, JSON.stringify({ ...base, packages: [...base.packages, 'strace'] }, null, 2));
  const { config: c } = loadConfig(['--recipe', mine], { KMODVM_CACHE_DIR: cache }, root);
  // a live "QEMU" (its argv[0] says so) that runs an image no recipe builds
  const fake = spawn('sleep', ['30'], { argv0: 'qemu-system-x86_64' });
  t.teardown(() => {
    fake.kill();
  });
  const idir = path.join(cache, 'instances', 'lab');
  await writeState({
    name: 'lab',
    pid: fake.pid!,
    port: 1,
    accel: 'tcg',
    imageKey: 'eeee',
    imageDir: '',
    kernelVersion: '',
    startedAt: new Date().toISOString(),
    dir: idir,
    serialLog: '',
    clientKey: '',
    hostPub: '',
  });
  const keep = await keptKeys(c);
  const d12 = imageKey({ ...c, recipe: 'qemu/kernels/debian-12.json' }).key;
  const d13 = imageKey({ ...c, recipe: 'qemu/kernels/debian-13.json' }).key;
  t.equal(keep.get(d12), 'the image of qemu/kernels/debian-12.json');
  t.equal(keep.get(d13), 'the image of qemu/kernels/debian-13.json');
  t.equal(keep.get(imageKey(c).key), `the image of ${mine}`);
  t.not(imageKey(c).key, d12, 'a recipe of your own has a key of its own');
  t.equal(keep.get('eeee'), 'instance lab runs it');
  const shipped = readdirSync(path.join(root, 'qemu/kernels')).filter((f) => f.endsWith('.json')).length;
  t.equal(keep.size, shipped + 2, "the shipped recipes, yours and the instance's");

  // the whole plan on that cache
  const old1 = '0123456789abcdef';
  const tmp99 = `.tmp-${old1}-99`;
  for (const k of [d12, old1, tmp99]) mkdirSync(path.join(cache, 'images', k), { recursive: true });
  for (const k of [d12, old1]) writeFileSync(path.join(cache, 'images', k, 'manifest.json'), '{}');
  for (const k of [d12, old1]) mkdirSync(path.join(cache, 'kbuild-records', k, 'shape'), { recursive: true });
  const [snapNew, snapOld, snapUnusable, snapUnusableOld] = ['1111111111111111', '2222222222222222', '3333333333333333', '4444444444444444'];
  for (const [s, k, f] of [
    [snapNew, d12, 'meta.json'],
    [snapOld, old1, 'meta.json'],
    [snapUnusable, d12, 'unusable.json'],
    [snapUnusableOld, old1, 'unusable.json'],
  ]) {
    mkdirSync(path.join(cache, 'snapshots', s), { recursive: true });
    writeFileSync(path.join(cache, 'snapshots', s, f), JSON.stringify({ key: s, imageKey: k }));
  }
  // What kmodvm did not make (#24: a wrong --cache-dir lost images/holiday-2024/): never removed.
  mkdirSync(path.join(cache, 'images', 'holiday-2024'));
  mkdirSync(path.join(cache, 'images', 'fedcba9876543210'));
  mkdirSync(path.join(cache, 'snapshots', 'photos'));
  mkdirSync(path.join(cache, 'kbuild-records', 'notes'));
  const plan = await prunePlan(c, { tmpDir: mkdtempSync(path.join(os.tmpdir(), 'kmodvm-prune-tmp-')) });
  t.same(
    plan.remove.map((r) => path.relative(cache, r.path)).sort(),
    [`images/${tmp99}`, `images/${old1}`, `kbuild-records/${old1}`, `snapshots/${snapOld}`, `snapshots/${snapUnusableOld}`].sort(),
    'a kept image\'s "cannot save here" marker stays; a pruned image\'s goes',
  );
  t.same(
    plan.keep.map((r) => path.relative(cache, r.path)).sort(),
    [`images/${d12}`, 'images/fedcba9876543210', 'images/holiday-2024', 'kbuild-records/notes', 'snapshots/photos'].sort(),
    'an image key without its manifest.json and names kmodvm does not make are kept',
  );
  t.match(plan.keep.find((k) => k.path.endsWith('holiday-2024'))!.why, /not made by kmodvm/);
});

t.test('applying the plan removes each entry whole and counts the bytes', async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-prune-apply-'));
  const old = path.join(cache, 'images', 'old1');
  mkdirSync(path.join(old, 'headers'), { recursive: true });
  writeFileSync(path.join(old, 'rootfs.qcow2'), Buffer.alloc(3 * 4096, 1));
  writeFileSync(path.join(old, 'headers', 'x.h'), 'int x;\n');
  const kept = path.join(cache, 'images', 'keep');
  mkdirSync(kept);
  const lines: string[] = [];
  const freed = await applyPrune({ remove: [{ path: old, why: 'built from a recipe this checkout no longer has' }], keep: [] }, (l) => lines.push(l));
  t.ok(freed >= 3 * 4096, `${freed} bytes freed`);
  t.notOk(existsSync(old));
  t.same(readdirSync(path.join(cache, 'images')), ['keep'], 'nothing else touched, no .tmp-prune left');
  t.match(lines[0], new RegExp(`^removed ${old} \\(0 MiB\\): built from a recipe`));
});

t.test('leftovers go too: build trees unused for 14 days (not one in use), and temporary directories a killed run left (#24 Low 17)', async (t) => {
  const { utimesSync } = await import('node:fs');
  const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-prune-left-'));
  const tmp = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-prune-tmpdir-'));
  const { config: c } = loadConfig([], { KMODVM_CACHE_DIR: cache }, root);
  const old = new Date(Date.now() - 20 * 86_400_000);
  const mk = (p: string, when?: Date): void => {
    mkdirSync(p, { recursive: true });
    if (when) utimesSync(p, when, when);
  };
  mk(path.join(cache, 'host-builds', 'aaaaaaaaaaaaaaaa'), old);
  mk(path.join(cache, 'host-builds', 'bbbbbbbbbbbbbbbb'));
  mk(path.join(cache, 'host-builds', 'cccccccccccccccc'), old);
  mk(path.join(cache, 'host-builds', 'cccccccccccccccc.lock'));
  mk(path.join(tmp, 'kmodvm-upload-Ab3dE9'), old);
  mk(path.join(tmp, 'kmodvm-upload-Zz9yX8'));
  mk(path.join(tmp, 'kmodvm-static-Qw3rT7'), old);
  mk(path.join(tmp, 'kmodvm-something-else'), old);
  mk(path.join(tmp, 'photos'), old);
  const plan = await prunePlan(c, { tmpDir: tmp });
  t.same(
    plan.remove
      .map((r) => r.path)
      .filter((p) => p.includes('host-builds') || p.startsWith(tmp))
      .sort(),
    [path.join(cache, 'host-builds', 'aaaaaaaaaaaaaaaa'), path.join(tmp, 'kmodvm-upload-Ab3dE9'), path.join(tmp, 'kmodvm-static-Qw3rT7')].sort(),
    "the old unused tree, the old stage and a killed static check's tree; not the fresh ones, the locked one, or names kmodvm does not make",
  );
});

t.test(
  'prune knows kernels/ (#27.4): the debug kernel each shipped recipe builds now stays; older builds and an interrupted one go; a name kmodvm does not make stays',
  async (t) => {
    const { keptKernels } = await import('../../../scripts/lib/loop/prune.ts');
    const { compilerVersion } = await import('../../../scripts/lib/build/debug-kernel.ts');
    const { debugKernelKey, loadDebugRecipe } = await import('../../../scripts/lib/build/debug-recipe.ts');
    const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-prune-kernels-'));
    const { config: c } = loadConfig(['--cache-dir', cache], {}, root);
    const current = `debian-12-debug-${debugKernelKey(loadDebugRecipe(root, 'debian-12-debug'), await compilerVersion())}`;
    t.equal((await keptKernels(c)).get(current), 'the debug kernel of qemu/debug-kernels/debian-12-debug.json');
    const old = 'debian-12-debug-0123456789abcdef';
    for (const n of [current, old]) {
      mkdirSync(path.join(cache, 'kernels', n), { recursive: true });
      writeFileSync(path.join(cache, 'kernels', n, 'kernel.json'), '{}');
    }
    for (const n of ['.tmp-0123456789abcdef-99', 'my-kernel-tree', `${old}.lock`]) mkdirSync(path.join(cache, 'kernels', n));
    const plan = await prunePlan(c, { tmpDir: mkdtempSync(path.join(os.tmpdir(), 'kmodvm-prune-tmp-')) });
    const rel = (items: { path: string }[]) =>
      items
        .map((r) => path.relative(cache, r.path))
        .filter((p) => p.startsWith('kernels/'))
        .sort();
    t.same(rel(plan.remove), ['kernels/.tmp-0123456789abcdef-99', `kernels/${old}`]);
    t.same(rel(plan.keep), [`kernels/${current}`, 'kernels/my-kernel-tree']);
    t.match(plan.remove.find((r) => r.path.endsWith(old))!.why, /no recipe of this checkout builds/);
  },
);
