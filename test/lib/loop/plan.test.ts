import t from 'tap';
import { defaultConfig, validateConfig } from '../../../scripts/lib/core/config.ts';
import { loadConfig } from '../../../scripts/lib/core/flags.ts';
import { planRun } from '../../../scripts/lib/loop/plan.ts';
import type { ResolvedSuite } from '../../../scripts/lib/suite/resolve.ts';

const root = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const suiteWith = (s: {
  kernelArgs?: string[];
  memcheck?: boolean;
  checks?: Record<string, unknown>;
  devices?: unknown[];
  tests?: unknown[];
  lifecycle?: unknown;
}): ResolvedSuite =>
  ({
    suite: { kernelArgs: [], memcheck: false, checks: {}, devices: [], tests: [], ...s },
    selected: [],
    files: [],
    linksLeftOut: [],
  }) as unknown as ResolvedSuite;

t.test("a suite's kernel_args come once, however often the suite is planned (#23: --reuse applied it twice)", async (t) => {
  const c = validateConfig({}, defaultConfig({}, root));
  const rs = suiteWith({ kernelArgs: ['kmodvm.e2e=once', 'loglevel=7'], memcheck: true });
  const once = planRun(c, rs).options;
  t.same(planRun(once, rs).options.kernelArgs, once.kernelArgs);
  t.equal(once.kernelArgs.filter((a) => a === 'kmodvm.e2e=once').length, 1);
  t.equal(planRun(once, rs).options.kernelArgs.filter((a) => a.startsWith('slub_debug=')).length, 1, "memcheck's slub_debug once");
});

t.test("--memcheck: the slab check's and the leak check's arguments, slub_debug's flags combined in one", async (t) => {
  const p = planRun(loadConfig(['--memcheck'], {}, root).config, suiteWith({}));
  t.same(p.options.kernelArgs, ['slub_debug=FZPU', 'page_poison=1', 'kfence.sample_interval=100']);
  t.same(p.checks.ids, ['exit-code', 'transcript', 'taint', 'no-splat', 'memcheck-slab', 'memcheck-leak']);
  const plain = planRun(loadConfig([], {}, root).config, suiteWith({}));
  t.same(plain.options.kernelArgs, [], 'not without it');
  t.same(plain.checks.ids, ['exit-code', 'transcript', 'taint', 'no-splat']);
  t.same(
    planRun(loadConfig([], {}, root).config, suiteWith({ memcheck: true })).options.kernelArgs,
    p.options.kernelArgs,
    "the suite's memcheck: true is --memcheck",
  );
});

t.test('the debug kernel: KASAN guards red zones and freed memory, so only the leak check, with its allocation traces', async (t) => {
  const p = planRun(loadConfig(['--kernel', 'debian-12-debug'], {}, root).config, suiteWith({}));
  t.same(p.options.kernelArgs, ['slub_debug=U']);
  t.same(p.checks.ids, ['exit-code', 'transcript', 'taint', 'no-splat', 'memcheck-leak']);
  t.equal(p.mode, 'tests');
});

t.test("a suite's checks: setting turns its check on", async (t) => {
  const p = planRun(loadConfig([], {}, root).config, suiteWith({ checks: { log_rate: 50 } }));
  t.same(p.checks.ids, ['exit-code', 'transcript', 'taint', 'no-splat', 'log_rate']);
});

t.test('a plan is frozen all the way down, and planning leaves the options as they were', async (t) => {
  const c = loadConfig(['--memcheck'], {}, root).config;
  const p = planRun(c, suiteWith({ kernelArgs: ['x=1'] }));
  t.ok(Object.isFrozen(p) && Object.isFrozen(p.options) && Object.isFrozen(p.options.kernelArgs) && Object.isFrozen(p.options.timeouts));
  t.throws(() => (p.options.kernelArgs as string[]).push('y'));
  t.same(c.kernelArgs, [], 'the options are not written');
  t.ok(Object.isFrozen(c), 'the options are frozen too');
});

t.test("the guest gets the suite's devices and its tests' own; the lifecycle options anywhere make their checks", async (t) => {
  const edu = { spec: 'edu,id=e0', driver: 'edu', id: 'e0', props: [['id', 'e0']] };
  const nvme = { spec: 'nvme,id=n0', driver: 'nvme', id: 'n0', props: [['id', 'n0']] };
  const p = planRun(
    defaultConfig(),
    suiteWith({ devices: [edu], tests: [{ name: 'a', devices: [nvme], lifecycle: { hot_unplug: true } }], lifecycle: { reload: 2 } }),
  );
  t.same(
    p.options.devices.map((d) => d.id),
    ['e0', 'n0'],
  );
  t.same([...p.checks.choice.lifecycle!].sort(), ['hot_unplug', 'reload']);
  t.ok(p.checks.ids.includes('hot-unplug') && p.checks.ids.includes('reload') && !p.checks.ids.includes('unbind-bind'));
});
