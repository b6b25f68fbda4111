// The suite file, kmodvm.yaml: its schema (zod, which also gives the
// TypeScript types) and the JSON Schema made from it, shipped as
// schema/kmodvm.schema.json so that editors check the file too
// (test/lib/suite/schema.test.ts keeps the two equal). Every path is
// relative to the suite root, the directory that holds the file.
import { z } from 'zod';
import { checksSetting } from './checks/registry.ts';

/** insmod parameters: one string split at whitespace, or a list (for a value with spaces). */
const params = z.union([z.string(), z.array(z.string())]).describe('insmod parameters: "a=1 b=2", or a list ["name=a b", "debug=1"] for values with spaces');

/** A path inside the suite root: relative, no `..` segment. */
const relPath = z
  .string()
  .min(1)
  .refine((p) => !p.startsWith('/') && !p.split('/').includes('..'), { message: 'must be a path inside the suite root (relative, without ..)' });

const makeVar = z.string().regex(/^[A-Za-z_][A-Za-z0-9_]*=/, 'must be a make variable assignment, NAME=value');
const moduleGlob = z.string().regex(/^[\w*?-]{1,80}$/, 'must be a module name or a glob of one (* and ?)');

const moduleDir = z.strictObject({
  dir: relPath.describe('a directory whose Makefile takes KDIR; every module its modules.order lists is loaded'),
  params: params.optional(),
  make: z
    .array(makeVar)
    .max(64)
    .optional()
    .describe(
      'more make arguments, NAME=value each, on the host and in the guest: a dkms.conf MAKE[0]="make CONFIG_X=m KCPPFLAGS=-DY" is make: [CONFIG_X=m, KCPPFLAGS=-DY]',
    ),
  target: z
    .string()
    .regex(/^[\w./-]{1,80}$/, 'must be a make target name')
    .optional()
    .describe('the make target (the Makefile\'s default when absent): a dkms.conf MAKE[0]="make all" is target: all'),
  load: z.array(moduleGlob).min(1).optional().describe('only these of the modules the dir builds are loaded: names or globs (xt_*)'),
  skip: z.array(moduleGlob).optional().describe('these of the modules the dir builds are not loaded: names or globs'),
});

const appDir = z.strictObject({
  dir: relPath.describe('a directory built with make (on the host with CC="gcc-N -static", or in the guest)'),
});

/** A QEMU -device spec with an id: a short form (qemu/devices.json) gets its backend from kmodvm; any other is passed as written. */
const devices = z
  .array(z.string().min(1).max(500))
  .describe('QEMU devices by -device syntax, each with an id: edu,id=edu0; nvme,id=scratch; any other spec is passed to QEMU as written (docs/devices.md)');

/** The lifecycle checks over the devices the suite's modules bound (docs/devices.md). */
export const lifecycleSchema = z
  .strictObject({
    unbind_bind: z.boolean().optional().describe("each bound device unbound and bound again through its driver's sysfs files, before the modules' rmmod"),
    hot_unplug: z.boolean().optional().describe('each bound hot-plugged device unplugged and plugged again through QMP, and bound again'),
    held_rmmod: z
      .string()
      .min(1)
      .max(4000)
      .optional()
      .describe(
        'a command line (sh -c, from the suite root) that holds a device of the module open, such as "exec 3</dev/edu0; exec sleep 600": rmmod while it holds it (refused as in use, or done), then the holder ended and its close run',
      ),
    reload: z.number().int().min(1).max(100).optional().describe('the modules unloaded and loaded again this many times before their last rmmod'),
  })
  .describe("probe/remove lifecycle checks; a test's own replaces the suite's");

const testName = z.string().regex(/^[A-Za-z0-9][\w.:@+-]{0,79}$/, 'must be 1-80 letters, digits or ._:@+- and start with a letter or digit');

const test = z.strictObject({
  name: testName,
  run: z.string().min(1).describe('a shell command line, passed as it is to sh -c in the guest, from the uploaded suite root'),
  transcript: relPath
    .optional()
    .describe('the expected transcript (docs/transcript.md); without it only the exit code, the kernel log and the taint are judged'),
  exit_code: z.number().int().min(0).max(255).default(0).describe('the exit code the command must end with'),
  timeout: z.number().positive().max(86400).optional().describe('seconds the command may run (default: the app timeout, 60)'),
  params: z.record(z.string(), params).optional().describe("insmod parameters for this test, by module name, replacing the module dir's"),
  devices: devices.optional().describe('devices hot-plugged before this test and unplugged after it (PCI short forms only)'),
  lifecycle: lifecycleSchema.optional(),
});

export const suiteSchema = z
  .strictObject({
    modules: z
      .array(moduleDir)
      .min(1)
      .describe("built in this order (each later dir sees the earlier ones' symbols through KBUILD_EXTRA_SYMBOLS), loaded in this order, unloaded in reverse"),
    apps: z.array(appDir).default([]),
    tests: z.array(test).default([]),
    kunit: z
      .array(moduleDir)
      .default([])
      .describe(
        "dirs whose modules hold KUnit suites, built after modules: (they see its symbols): kmodvm adds a test kunit:DIR that loads the suite's modules and these, and reports each KUnit case (needs a kernel with CONFIG_KUNIT: --kernel debian-12-debug)",
      ),
    setup: z
      .array(z.string().min(1))
      .default([])
      .describe('shell command lines run in the guest, from the suite root, after the build and before the first test'),
    load: z
      .enum(['per-test', 'once'])
      .default('per-test')
      .describe('per-test: each test loads and unloads the modules; once: loaded before the first test, unloaded after the last'),
    kernel_args: z
      .union([z.string(), z.array(z.string())])
      .optional()
      .describe('added to the guest kernel command line'),
    memcheck: z
      .boolean()
      .default(false)
      .describe('--memcheck for every run of this suite: SLUB debugging, the slab check after each test, the leak check at rmmod'),
    dump: z
      .boolean()
      .default(false)
      .describe("--dump for every run of this suite: a guest's panic or oops leaves its memory in the run directory, for kmodvm crash"),
    coverage: z
      .boolean()
      .default(false)
      .describe("--coverage for every run of this suite: each test's line and branch coverage of your sources, and the suite's (docs/coverage.md)"),
    coverage_min: z
      .union([z.number().min(0).max(100), z.strictObject({ lines: z.number().min(0).max(100).optional(), branches: z.number().min(0).max(100).optional() })])
      .optional()
      .describe("the suite's least coverage, in percent: 80 (lines), or { lines: 80, branches: 60 }; under it the run fails (exit 18). It turns coverage on"),
    static: z
      .enum(['warn', 'strict'])
      .optional()
      .describe(
        'the static checks in every run (W=1, sparse, checkpatch on your sources; kmodvm check runs them alone): warn reports the findings, strict fails the run on any (exit 16)',
      ),
    checks: checksSetting.default({}),
    devices: devices.default([]),
    fixtures: z
      .array(z.union([z.string().min(1).max(500), z.strictObject({ name: z.string().min(1).max(80), params: params.optional() })]))
      .default([])
      .describe(
        'the kernel\'s own test doubles, modprobed with parameters before the suite\'s modules and removed after: "i2c-stub chip_addr=0x50", scsi_debug, null_blk, mac80211_hwsim, dummy_hcd, gadget-acm, vivid, vcan, uinput (qemu/fixtures.json, docs/devices.md)',
      ),
    lifecycle: lifecycleSchema.optional(),
    kernels: z
      .array(z.string().regex(/^[a-z0-9][a-z0-9.-]*$/))
      .min(1)
      .optional()
      .describe('the kernels to run on (qemu/kernels/<name>.json); several make a matrix'),
    exclude: z.array(z.string().min(1)).default([]).describe('gitignore-style patterns the upload leaves out, besides build products, .gitignore and .git'),
    include: z
      .array(z.string().min(1))
      .default([])
      .describe(
        'gitignore-style patterns of files the upload takes though it leaves such files out by default: ELF binaries and build products (a prebuilt .ko, a firmware blob)',
      ),
  })
  .superRefine((s, ctx) => {
    if (!s.tests.length && !s.kunit.length) ctx.addIssue({ code: 'custom', path: ['tests'], message: 'a suite needs at least one test, or a kunit: dir' });
    if (s.kunit.length && s.load === 'once')
      ctx.addIssue({ code: 'custom', path: ['kunit'], message: "the kunit: dirs' modules load in their own test: they need load: per-test" });
    if (s.load === 'once')
      for (const [at, l] of [[['lifecycle'], s.lifecycle] as const, ...s.tests.map((t, i) => [['tests', i, 'lifecycle'], t.lifecycle] as const)])
        if (l)
          ctx.addIssue({
            code: 'custom',
            path: [...at],
            message: "the lifecycle checks run around each test's rmmod: they need load: per-test",
          });
    const seen = new Map<string, number>();
    s.tests.forEach((t, i) => {
      if (t.params && s.load === 'once')
        ctx.addIssue({
          code: 'custom',
          path: ['tests', i, 'params'],
          message: "per-test params need load: per-test (with load: once the modules are loaded once, with their dirs' params)",
        });
      if (seen.has(t.name)) ctx.addIssue({ code: 'custom', path: ['tests', i, 'name'], message: `duplicate test name (also tests[${seen.get(t.name)}])` });
      seen.set(t.name, i);
    });
  });

export type SuiteFile = z.output<typeof suiteSchema>;
export type SuiteTestFile = SuiteFile['tests'][number];

/** The JSON Schema editors use (yaml-language-server, VS Code). */
export function suiteJsonSchema(): Record<string, unknown> {
  return {
    $id: 'https://kmodvm.invalid/schema/kmodvm.schema.json',
    title: 'kmodvm suite (kmodvm.yaml)',
    ...z.toJSONSchema(suiteSchema, { io: 'input', target: 'draft-2020-12' }),
  };
}
