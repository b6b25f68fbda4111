// The suite file: the shipped JSON Schema is the one the zod schema makes,
// and every bad file is a usage error (exit 2) naming the file, the line and the field.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';
import { loadSuite, parseSuiteText } from '../../../scripts/lib/suite/load.ts';
import { suiteJsonSchema } from '../../../scripts/lib/suite/schema.ts';

const root = new URL('../../../', import.meta.url).pathname;

t.test('schema/kmodvm.schema.json is the schema the code checks with', async (t) => {
  t.same(JSON.parse(readFileSync(path.join(root, 'schema/kmodvm.schema.json'), 'utf8')), suiteJsonSchema(), 'regenerate it with: npm run schema');
});

const repo = (yaml: string, files: Record<string, string> = {}): string => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-suite-'));
  for (const [f, text] of Object.entries({ 'drv/Makefile': 'obj-m += x.o\n', 't/x.transcript': '[app]\nhi\n', ...files })) {
    mkdirSync(path.dirname(path.join(d, f)), { recursive: true });
    writeFileSync(path.join(d, f), text);
  }
  writeFileSync(path.join(d, 'kmodvm.yaml'), yaml);
  return path.join(d, 'kmodvm.yaml');
};

const fails = async (t: Test, yaml: string, re: RegExp, o: { files?: Record<string, string>; update?: boolean } = {}): Promise<void> => {
  const f = repo(yaml, o.files);
  const e = await loadSuite(f, { update: o.update }).then(
    () => undefined,
    (x: unknown) => x,
  );
  t.type(e, KmodvmError);
  t.equal((e as KmodvmError).failure, 'usage', 'exit 2');
  t.match((e as Error).message, new RegExp(`^${f.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:${re.source}`));
};

t.test('a good suite resolves its paths and defaults', async (t) => {
  const s = await loadSuite(
    repo('modules:\n  - dir: drv\n    params: a=1 b=2\ntests:\n  - name: one\n    run: echo hi\n    transcript: t/x.transcript\n    params: { x-y: c=3 }\n'),
  );
  t.equal(s.modules[0].abs, path.join(s.root, 'drv'));
  t.same(s.modules[0].params, ['a=1', 'b=2']);
  t.same(s.tests[0], {
    name: 'one',
    run: 'echo hi',
    transcript: { rel: 't/x.transcript', abs: path.join(s.root, 't/x.transcript') },
    exitCode: 0,
    timeoutS: undefined,
    params: { x_y: ['c=3'] },
    paramsAt: { x_y: { line: 8, field: 'tests[0].params.x-y' } },
  });
  t.equal(s.load, 'per-test');
  t.same([s.apps, s.setup, s.exclude, s.kernelArgs], [[], [], [], []]);
});

t.test('bad files: the line and the field', async (t) => {
  await fails(
    t,
    'modules:\n  - dir: drv\n    parms: x=1\ntests:\n  - name: a\n    run: x\n',
    /3: modules\[0\]\.parms: unknown field \(known: dir, params, make, target, load, skip\)/,
  );
  await fails(t, 'modules:\n  - dir: drv\ntests:\n  - name: a\n    run: x\n    exit_code: "zero"\n', /6: tests\[0\]\.exit_code: /);
  await fails(t, 'modules:\n  - dir: nope\ntests:\n  - name: a\n    run: x\n', /2: modules\[0\]\.dir: no directory /);
  await fails(t, 'modules:\n  - dir: t\ntests:\n  - name: a\n    run: x\n', /2: modules\[0\]\.dir: .* has no Makefile/);
  await fails(t, 'modules:\n  - dir: drv\ntests:\n  - name: a\n    run: x\n    transcript: t/missing\n', /6: tests\[0\]\.transcript: no file /);
  await fails(t, 'modules:\n  - dir: drv\ntests:\n  - name: a\n    run: x\n  - name: a\n    run: y\n', /6: tests\[1\]\.name: duplicate test name/);
  await fails(t, 'modules:\n  - dir: ../drv\ntests:\n  - name: a\n    run: x\n', /2: modules\[0\]\.dir: must be a path inside the suite root/);
  await fails(
    t,
    'modules:\n  - dir: drv\nload: once\ntests:\n  - name: a\n    run: x\n    params: { m: x=1 }\n',
    /7: tests\[0\]\.params: per-test params need load: per-test/,
  );
  await fails(t, 'modules: [\n', /\d+: not valid YAML/);
  await fails(t, 'modules:\n  - dir: drv\ntests: []\nload: sometimes\n', /4: load: /);
  await fails(t, 'modules:\n  - dir: drv\ntests: []\n', /3: tests: a suite needs at least one test, or a kunit: dir/);
  await fails(
    t,
    'modules:\n  - dir: drv\nload: once\nkunit:\n  - dir: drv\n',
    /4: kunit: the kunit: dirs' modules load in their own test: they need load: per-test/,
  );
  await fails(t, 'modules:\n  - dir: drv\ntests:\n  - name: a\n    run: x\nfrobnicate: 1\n', /6: frobnicate: unknown field \(known: modules, apps, tests/);
});

t.test('--update may name a transcript that does not exist yet', async (t) => {
  const s = await loadSuite(repo('modules:\n  - dir: drv\ntests:\n  - name: a\n    run: x\n    transcript: t/new\n'), { update: true });
  t.equal(s.tests[0].transcript?.rel, 't/new');
});

t.test('a suite file that is not there says how to get one', async (t) => {
  const e = await loadSuite('/nonexistent/kmodvm.yaml').catch((x: KmodvmError) => x);
  t.match((e as KmodvmError).hint, /--suite FILE, or write a kmodvm\.yaml/);
});

t.test('parseSuiteText alone: kernel_args and kernels', async (t) => {
  const { suite } = parseSuiteText(
    'modules: [{dir: d}]\ntests: [{name: a, run: x}]\nkernel_args: quiet slub_debug=FZ\nkernels: [debian-12, debian-13]\n',
    'k.yaml',
  );
  t.equal(suite.kernel_args, 'quiet slub_debug=FZ');
  t.same(suite.kernels, ['debian-12', 'debian-13']);
});

t.test('devices and lifecycle (#25): bad input names the file, the line and the field', async (t) => {
  const head = 'modules:\n  - dir: drv\n';
  await fails(t, `${head}devices:\n  - edu\ntests:\n  - name: a\n    run: x\n`, /4: devices\[0\]: every device needs an id/);
  await fails(
    t,
    `${head}devices:\n  - edu,id=e0\ntests:\n  - name: a\n    run: x\n    devices: ["edu,id=e0"]\n`,
    /8: tests\[0\]\.devices\[0\]: duplicate device id e0 \(also devices\[0\]\)/,
  );
  await fails(
    t,
    `${head}tests:\n  - name: a\n    run: x\n    devices: ["usb-kbd,id=k"]\n`,
    /6: tests\[0\]\.devices\[0\]: usb-kbd cannot be hot-plugged for one test/,
  );
  await fails(
    t,
    `${head}devices:\n  - vhost-vsock-pci,id=v,guest-cid=3\ntests:\n  - name: a\n    run: x\n`,
    /4: devices\[0\]: vhost-vsock-pci reaches the host itself/,
  );
  await fails(t, `${head}devices:\n  - usb-host,id=h\ntests:\n  - name: a\n    run: x\n`, /4: devices\[0\]: usb-host reaches the host itself/);
  await fails(t, `${head}load: once\nlifecycle: {unbind_bind: true}\ntests:\n  - name: a\n    run: x\n`, /4: lifecycle: .*need load: per-test/);
  await fails(
    t,
    `${head}lifecycle: {unbind: true}\ntests:\n  - name: a\n    run: x\n`,
    /3: lifecycle\.unbind: unknown field \(known: unbind_bind, hot_unplug, held_rmmod, reload\)/,
  );
  const s = await loadSuite(repo(`${head}devices: ["edu,id=e0"]\nlifecycle: {reload: 2}\ntests:\n  - name: a\n    run: x\n    devices: ["nvme,id=n0"]\n`));
  t.match(s.devices, [{ driver: 'edu', id: 'e0', where: { line: 3, field: 'devices[0]' } }]);
  t.match(s.tests[0].devices, [{ driver: 'nvme', id: 'n0' }]);
  t.same(s.lifecycle, { reload: 2 });
});

t.test('make:, target:, load: and skip: (#29.3, #29.10): bad values name the line and field', async (t) => {
  await fails(
    t,
    'modules:\n  - dir: drv\n    make: [-j8]\ntests:\n  - name: a\n    run: x\n',
    /3: modules\[0\]\.make\[0\]: must be a make variable assignment/,
  );
  await fails(t, 'modules:\n  - dir: drv\n    target: "all; rm"\ntests:\n  - name: a\n    run: x\n', /3: modules\[0\]\.target: must be a make target name/);
  await fails(
    t,
    'modules:\n  - dir: drv\n    skip: ["../x"]\ntests:\n  - name: a\n    run: x\n',
    /3: modules\[0\]\.skip\[0\]: must be a module name or a glob/,
  );
});

t.test("devices: [edu,id=edu0] in YAML's flow form is two items; the hint says so and how to write it", async (t) => {
  const { deviceHint } = await import('../../../scripts/lib/suite/load.ts');
  t.match(deviceHint(['edu', 'id=edu0'], 0), /YAML split "edu,id=edu0" at its comma[\s\S]*\["edu,id=edu0"\]/);
  t.match(deviceHint(['edu'], 0), /^write it as QEMU -device takes it/);
});

t.test("a test's params for a module the build does not make: bad input at its line, once the build names the modules (#29.18)", async (t) => {
  const { paramsForNoModule } = await import('../../../scripts/lib/suite/load.ts');
  const f = repo(
    'modules:\n  - dir: drv\ntests:\n  - name: one\n    run: echo hi\n    params:\n      x-y: c=3\n  - name: two\n    run: echo hi\n    params:\n      x_y: c=1\n      nosuch-mod: d=4\n',
  );
  const s = await loadSuite(f);
  t.equal(paramsForNoModule({ ...s, tests: s.tests.slice(0, 1) }, ['x_y']), undefined, 'dashes and underscores name one module');
  const e = paramsForNoModule(s, ['x_y', 'z']);
  t.equal(e?.failure, 'usage', 'exit 2');
  t.equal(e?.message, `${f}:12: tests[1].params.nosuch-mod: test two gives parameters to nosuch_mod, which the suite does not build (it builds x_y, z)`);
  t.match(e?.hint, /name one of the suite's modules/);
});
