import path from 'node:path';
import t from 'tap';
import { defaultCacheDir, defaultConfig } from '../../../scripts/lib/core/config.ts';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';
import { loadConfig, withOptionalValues } from '../../../scripts/lib/core/flags.ts';

const root = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');

t.test('defaults are the documented ones', async (t) => {
  const c = defaultConfig({ HOME: '/home/u' }, '/repo', '/home/u/driver');
  t.equal(c.accel, 'auto');
  t.equal(c.memoryMiB, 1024);
  t.equal(c.cpus, 2);
  t.equal(c.mirror, '', "mmdebstrap's own default mirror");
  t.equal(c.runsDir, '/home/u/driver/runs', 'runs/ of the current directory (a module repository, when kmodvm runs from node_modules)');
  t.equal(c.suite, '', "the suite: ./kmodvm.yaml, else the checkout's own");
  t.same([c.moduleDir, c.appDir, c.transcript], ['', '', ''], 'no one-test suite unless --module-dir is given');
  t.same([c.only, c.shard, c.update, c.kernelArgs], [[], '', false, []]);
  t.equal(c.kernel, 'debian-12');
  t.same(c.timeouts, { boot: 180, build: 600, load: 60, app: 60, command: 60 });
  t.equal(c.dryRun, false);
  t.equal(c.replay, true, 'kbuild replay on by default');
  t.equal(c.resume, true, 'resume from a snapshot on by default');
});

t.test('resume: --no-resume and KMODVM_RESUME turn it off; other values name the field', async (t) => {
  t.equal(loadConfig(['--no-resume'], {}, root).config.resume, false);
  t.equal(loadConfig([], { KMODVM_RESUME: '0' }, root).config.resume, false);
  t.equal(loadConfig([], { KMODVM_RESUME: 'yes' }, root).config.resume, true);
  t.throws(() => loadConfig([], { KMODVM_RESUME: 'later' }, root), /config field `resume` must be 1 or 0/);
});

t.test('replay: --no-replay and KMODVM_REPLAY turn it off; other values name the field', async (t) => {
  t.equal(loadConfig(['--no-replay'], {}, root).config.replay, false);
  t.equal(loadConfig([], { KMODVM_REPLAY: '0' }, root).config.replay, false);
  t.equal(loadConfig([], { KMODVM_REPLAY: 'true' }, root).config.replay, true);
  t.throws(() => loadConfig([], { KMODVM_REPLAY: 'maybe' }, root), /config field `replay` must be 1 or 0/);
});

t.test('cache dir: KMODVM_CACHE_DIR, then XDG_CACHE_HOME, then ~/.cache', async (t) => {
  t.equal(defaultCacheDir({ KMODVM_CACHE_DIR: '/c' }), '/c');
  t.equal(defaultCacheDir({ XDG_CACHE_HOME: '/x' }), '/x/kmodvm');
  t.match(defaultCacheDir({}), /\/\.cache\/kmodvm$/);
});

t.test('flags beat the environment, which beats defaults', async (t) => {
  const { config } = loadConfig(
    ['--accel', 'tcg', '--memory', '2048'],
    { KMODVM_ACCEL: 'kvm', KMODVM_CPUS: '4', KMODVM_MIRROR: 'http://m.example/debian' },
    root,
  );
  t.equal(config.accel, 'tcg');
  t.equal(config.memoryMiB, 2048);
  t.equal(config.cpus, 4);
  t.equal(config.mirror, 'http://m.example/debian');
});

t.test('bad values are usage errors that name the field', async (t) => {
  const bad = (argv: string[], field: RegExp): void => {
    try {
      loadConfig(argv, {}, root);
      t.fail(`accepted ${argv.join(' ')}`);
    } catch (e) {
      t.type(e, KmodvmError);
      t.equal((e as KmodvmError).failure, 'usage');
      t.equal((e as KmodvmError).exitCode, 2);
      t.match((e as Error).message, field);
    }
  };
  bad(['--accel', 'hvf'], /`accel` must be one of auto, kvm, tcg/);
  bad(['--memory', '12x'], /`memoryMiB` must be a whole number/);
  bad(['--cpus', '0'], /`cpus`/);
  bad(['--boot-timeout=-1'], /`timeouts.boot`/);
  bad(['--mirror', 'ftp:/nope'], /`mirror`/);
  bad(['--frobnicate'], /Unknown option '--frobnicate'/);
  bad(['--kernel-image', 'package.json'], /`kernelBuildDir` is needed too/);
  bad(['--kernel-image', 'package.json', '--kernel-build-dir', 'nope'], /`kernelBuildDir` names no file or directory/);
  bad(['--kernel-initrd', 'package.json'], /`kernelInitrd` goes with --kernel-image/);
  bad(['--kernel-image', 'package.json', '--kernel-build-dir', 'scripts', '--build', 'guest'], /`build` must be host or auto with --kernel-image/);
  bad(['--app-dir', 'userapp'], /`appDir` goes with --module-dir/);
  bad(['--module-dir', 'kernel-module', '--suite', 'kmodvm.yaml'], /`suite` and --module-dir exclude each other/);
  bad(['--shard', '3'], /`shard` must be I\/N/);
  bad(['--kernel', 'debian-99'], /`kernel` names no recipe file \(qemu\/kernels\/debian-99.json\); the shipped kernels are debian-12/);
});

t.test("relative directories resolve against the repository root; the user's paths against the current directory", async (t) => {
  const { config } = loadConfig(['--runs-dir', 'out'], {}, root);
  t.equal(config.runsDir, path.join(root, 'out'));
  t.equal(config.recipe, 'qemu/kernels/debian-12.json');
  const here = loadConfig(['--suite', 'x/kmodvm.yaml', '--only', 'a*', '--only', 'b', '--shard', '2/3', '--update'], {}, root, '/home/u/driver').config;
  t.equal(here.suite, '/home/u/driver/x/kmodvm.yaml');
  t.same(here.only, ['a*', 'b'], '--only adds up');
  t.equal(here.shard, '2/3');
  t.equal(here.update, true);
  t.equal(loadConfig([], { KMODVM_SHARD: '1/2' }, root).config.shard, '1/2');
});

t.test('numbers are digits only: --cpus 1e1 and --memory 0x400 are bad input, not 10 and 1024', async (t) => {
  t.throws(() => loadConfig(['--cpus', '1e1'], {}, root), /config field `cpus` must be a whole number from 1 to 64, got "1e1"/);
  t.throws(() => loadConfig(['--memory', '0x400'], {}, root), /config field `memoryMiB` must be a whole number/);
  t.throws(() => loadConfig(['--boot-timeout', '1.5'], {}, root), /config field `timeouts.boot` must be a whole number/);
  t.equal(loadConfig(['--cpus', '4'], {}, root).config.cpus, 4);
});

t.test("--memcheck is an option; the command line it needs is the plan's (test/lib/loop/plan.test.ts)", async (t) => {
  const c = loadConfig(['--memcheck'], {}, root).config;
  t.equal(c.memcheck, true);
  t.same(c.kernelArgs, [], 'the options stay what was given');
});

t.test('--kernel debian-12-debug: a debug kernel, booted on the debian-12 image, with memcheck on', async (t) => {
  const c = loadConfig(['--kernel', 'debian-12-debug'], {}, root).config;
  t.equal(c.debugKernel, 'debian-12-debug');
  t.equal(c.recipe, 'qemu/kernels/debian-12.json', 'the image of the recipe’s `image`');
  t.equal(c.memcheck, true);
  t.equal(loadConfig([], {}, root).config.debugKernel, '', 'not without it');
  t.throws(
    () => loadConfig(['--kernel', 'debian-12-debug', '--kernel-image', 'package.json', '--kernel-build-dir', 'scripts'], {}, root),
    /`kernel` is a debug kernel, which kmodvm builds and boots itself/,
  );
  t.throws(() => loadConfig(['--kernel', 'debian-99'], {}, root), /the shipped kernels are debian-12, debian-12-cloud, debian-12-debug, debian-13/);
});

t.test(
  "a relative --runs-dir, --cache-dir, --kernel-* or KMODVM_RUNS_DIR is the user's, from the current directory, not from the install (#23: runs landed in node_modules/kmodvm/myruns)",
  async (t) => {
    const { mkdtempSync } = await import('node:fs');
    const os = await import('node:os');
    const cwd = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-cwd-'));
    const { config } = loadConfig(['--runs-dir', 'myruns', '--cache-dir', 'mycache'], {}, root, cwd);
    t.equal(config.runsDir, path.join(cwd, 'myruns'));
    t.equal(config.cacheDir, path.join(cwd, 'mycache'));
    t.equal(loadConfig([], { KMODVM_RUNS_DIR: 'envruns' }, root, cwd).config.runsDir, path.join(cwd, 'envruns'));
  },
);

t.test('--shuffle alone is --shuffle=random; with digits after it, they are its seed; --repeat is 1..1000', async (t) => {
  t.equal(loadConfig(['--shuffle'], {}, root).config.shuffle, 'random');
  t.equal(loadConfig(['--shuffle', '--repeat', '3'], {}, root).config.shuffle, 'random');
  t.equal(loadConfig(['--shuffle', '17'], {}, root).config.shuffle, '17');
  t.equal(loadConfig(['--shuffle=17'], {}, root).config.shuffle, '17');
  t.equal(loadConfig(['--repeat', '3'], {}, root).config.repeat, 3);
  t.throws(() => loadConfig(['--repeat', '0'], {}, root), /repeat/);
  t.throws(() => loadConfig(['--shuffle=abc'], {}, root), /shuffle/);
  t.same(withOptionalValues(['--', '--shuffle'], ['shuffle']), ['--', '--shuffle'], 'after -- nothing is a flag');
});
