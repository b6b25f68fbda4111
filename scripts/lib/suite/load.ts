// Reads a suite file: YAML (zx's parser) checked against the schema, then
// against the file system (dirs with a Makefile, transcripts that exist).
// Every error names the file, the line and the field, and exits 2 (usage)
// before anything boots.
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { dataError, fieldName, parseData, type Where } from '../core/datafile.ts';
import { KmodvmError } from '../core/errors.ts';
import { loadDeviceForms, refusedDrivers } from '../vm/device-forms.ts';
import { type DeviceDecl, declOf, refusedDriver } from '../vm/devices.ts';
import type { Lifecycle } from './checks/check.ts';
import { type Fixture, loadFixtureTable, resolveFixtures } from './fixtures.ts';
import { type SuiteFile, type SuiteTestFile, suiteSchema } from './schema.ts';

export interface SuiteModuleDir {
  dir: string;
  abs: string;
  params: string[];
  /** More make arguments (NAME=value), and the target. */
  make?: string[];
  target?: string;
  /** Which of the dir's modules load: only those matching load (when given), none matching skip. */
  load?: string[];
  skip?: string[];
  /** A kunit: dir: its modules load only in its own test (kunit:DIR). */
  kunit?: boolean;
}
export interface SuiteTest {
  name: string;
  run: string;
  /** The transcript, relative to the root and absolute; absent when the test names none. */
  transcript?: { rel: string; abs: string };
  exitCode: number;
  timeoutS?: number;
  /** insmod parameters by module name, replacing the dir's. */
  params?: Record<string, string[]>;
  /** Where each of params' module names is written, for an error before anything loads. */
  paramsAt?: Record<string, { line?: number; field: string }>;
  /** Devices hot-plugged for this test only. */
  devices?: DeviceDecl[];
  /** Its lifecycle checks; the suite's when it names none. */
  lifecycle?: Lifecycle;
  /** The test kmodvm adds for a kunit: dir: it loads that dir's modules too, and its checks read their KUnit results. */
  kunit?: string;
}
export interface Suite {
  file: string;
  root: string;
  modules: SuiteModuleDir[];
  apps: { dir: string; abs: string }[];
  tests: SuiteTest[];
  setup: string[];
  load: 'per-test' | 'once';
  kernelArgs: string[];
  /** memcheck: true, the suite's own --memcheck; dump: true, its --dump. */
  memcheck: boolean;
  dump: boolean;
  /** coverage: true, or a coverage_min (which turns it on): --coverage for every run (checks/coverage.ts). */
  coverage: boolean;
  coverageMin?: { lines?: number; branches?: number };
  /** static: the static checks in the run (suite/static-check.ts). */
  static?: 'warn' | 'strict';
  /** checks: the settings that turn checks on, by check id (checks/registry.ts). */
  checks: Record<string, unknown>;
  kernels?: string[];
  exclude: string[];
  /** Files the upload takes though they are ELF or build products (files.ts). */
  include: string[];
  /** The suite's own devices, present for every test (vm/devices.ts). */
  devices: DeviceDecl[];
  /** The kernel's test doubles, set up before the modules load (fixtures.ts). */
  fixtures: Fixture[];
  lifecycle?: Lifecycle;
  /**
   * A --module-dir suite: its dirs live anywhere on the host, and appear in
   * the suite (and the guest) under fixed names. Without mounts, the root's
   * files are the suite's.
   */
  mounts?: { rel: string; abs: string }[];
}

/** Every device the suite names, its own and then its tests', in order: the guest's ports and the runner's plugging are planned from this one list, so they agree. */
export const allDevices = (s: Pick<Suite, 'devices' | 'tests'>): DeviceDecl[] => [...s.devices, ...s.tests.flatMap((t) => t.devices ?? [])];

/** Where a suite path is on the host. */
export function srcPath(s: Pick<Suite, 'root' | 'mounts'>, rel: string): string {
  const m = s.mounts?.find((x) => rel === x.rel || rel.startsWith(`${x.rel}/`));
  return m ? path.join(m.abs, rel.slice(m.rel.length)) : path.join(s.root, rel);
}

/** Text that names files under base (the build tree, the guest's copy) with the host's own paths instead. */
export function hostPaths(s: Pick<Suite, 'root' | 'mounts'>, text: string, base: string): string {
  let out = text;
  for (const m of s.mounts ?? []) out = out.split(`${base}/${m.rel}/`).join(`${m.abs}/`);
  return out.split(`${base}/`).join(s.root === '/' ? '/' : `${s.root}/`);
}

export const paramList = (p: string | string[] | undefined): string[] => (p === undefined ? [] : Array.isArray(p) ? p : p.split(/\s+/).filter(Boolean));

const HINT = 'fix the suite file; its fields are in docs/suite.md and schema/kmodvm.schema.json';

function usage(file: string, line: number | undefined, field: string, message: string, hint?: string): KmodvmError {
  return dataError(file, line, field, message, hint ?? HINT);
}

export { fieldName };

/** Parses and validates the text of a suite file (pure but for the file name it quotes). */
export function parseSuiteText(text: string, file: string): { suite: SuiteFile; where: Where } {
  const { value, where } = parseData(text, file, suiteSchema, HINT);
  return { suite: value, where };
}

/** The largest expected transcript kmodvm reads. */
export const TRANSCRIPT_MAX = 16 * 2 ** 20;

/** One test of the suite file, resolved: its transcript (there, unless --update writes it), its params by module name with their lines, its devices. */
function testOf(t: SuiteTestFile, i: number, x: { abs: string; root: string; where: Where; update?: boolean; seenIds: SeenIds }): SuiteTest {
  const tr = t.transcript ? { rel: t.transcript, abs: path.resolve(x.root, t.transcript) } : undefined;
  if (tr && !x.update && !existsSync(tr.abs)) {
    throw usage(
      x.abs,
      x.where(['tests', i, 'transcript']),
      `tests[${i}].transcript`,
      `no file ${tr.abs}`,
      'write it, or run once with --update to write it from what the test prints',
    );
  }
  return {
    name: t.name,
    run: t.run,
    transcript: tr,
    exitCode: t.exit_code,
    timeoutS: t.timeout,
    params: t.params && Object.fromEntries(Object.entries(t.params).map(([k, v]) => [k.replace(/-/g, '_'), paramList(v)])),
    paramsAt:
      t.params &&
      Object.fromEntries(
        Object.keys(t.params).map((k) => [k.replace(/-/g, '_'), { line: x.where(['tests', i, 'params', k]), field: `tests[${i}].params.${k}` }]),
      ),
    devices: t.devices && decls(x.abs, x.where, t.devices, ['tests', i, 'devices'], x.seenIds, true),
    lifecycle: t.lifecycle,
  };
}

/** The test of a kunit: dir: it loads the suite's modules and the dir's, whose KUnit suites run as they load (checks/kunit.ts). */
const kunitTest = (k: { dir: string }): SuiteTest => ({ name: `kunit:${k.dir}`, run: 'true', exitCode: 0, kunit: k.dir });

/** Reads, validates and resolves a suite file. With update, a transcript may be missing (--update writes it). */
export async function loadSuite(file: string, o: { update?: boolean } = {}): Promise<Suite> {
  const abs = path.resolve(file);
  const text = await readFile(abs, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new KmodvmError('usage', `cannot read the suite file ${abs} (${e.code ?? e.message})`, {
      hint: 'pass --suite FILE, or write a kmodvm.yaml (docs/suite.md)',
    });
  });
  const { suite: s, where } = parseSuiteText(text, abs);
  const root = path.dirname(abs);
  const dirOf = (kind: 'modules' | 'apps' | 'kunit', i: number, dir: string): string => {
    const d = path.resolve(root, dir);
    if (!existsSync(d) || !statSync(d).isDirectory()) throw usage(abs, where([kind, i, 'dir']), `${kind}[${i}].dir`, `no directory ${d}`);
    if (!['Makefile', 'makefile', 'GNUmakefile', 'Kbuild'].some((m) => existsSync(path.join(d, m))))
      throw usage(abs, where([kind, i, 'dir']), `${kind}[${i}].dir`, `${d} has no Makefile`);
    return d;
  };
  const seenIds = new Map<string, string>();
  const devices = decls(abs, where, s.devices, ['devices'], seenIds, false);
  const tests = [...s.tests.map((t, i) => testOf(t, i, { abs, root, where, update: o.update, seenIds })), ...s.kunit.map(kunitTest)];
  return {
    file: abs,
    root,
    modules: [
      ...s.modules.map((m, i) => ({ ...m, abs: dirOf('modules', i, m.dir), params: paramList(m.params) })),
      ...s.kunit.map((m, i) => ({ ...m, abs: dirOf('kunit', i, m.dir), params: paramList(m.params), kunit: true })),
    ],
    apps: s.apps.map((a, i) => ({ dir: a.dir, abs: dirOf('apps', i, a.dir) })),
    tests,
    setup: s.setup,
    load: s.load,
    kernelArgs: Array.isArray(s.kernel_args) ? s.kernel_args : paramList(s.kernel_args),
    memcheck: s.memcheck,
    dump: s.dump,
    static: s.static,
    coverage: s.coverage || s.coverage_min !== undefined,
    coverageMin: typeof s.coverage_min === 'number' ? { lines: s.coverage_min } : s.coverage_min,
    checks: s.checks,
    kernels: s.kernels,
    exclude: s.exclude,
    include: s.include,
    devices,
    fixtures: resolveFixtures(s.fixtures, loadFixtureTable(), abs, where),
    lifecycle: s.lifecycle,
  };
}

/** YAML's flow list `[edu,id=edu0]` is two items, split at the comma: say so when that is what happened. */
export function deviceHint(specs: readonly string[], k: number): string {
  const next = specs[k + 1];
  if (!specs[k].includes('=') && next !== undefined && /^[\w.-]+=/.test(next))
    return `YAML split "${specs[k]},${next}" at its comma ([a, b] is a list of two): quote it, devices: ["${specs[k]},${next}"], or write one device a line (- ${specs[k]},${next}) (docs/devices.md)`;
  return 'write it as QEMU -device takes it, with an id: edu,id=edu0 (docs/devices.md)';
}

/** Every suite and test device id, with the field that first named it. */
type SeenIds = Map<string, string>;

/** The devices of one list: each a -device spec with a unique id; a test's own must be hot-pluggable (a PCI short form). */
function decls(file: string, where: Where, specs: readonly string[], at: (string | number)[], seen: SeenIds, perTest: boolean): DeviceDecl[] {
  const forms = loadDeviceForms();
  return specs.map((spec, k) => {
    const field = fieldName([...at, k]);
    const d = declOf(spec);
    if (typeof d === 'string') throw usage(file, where([...at, k]), field, d, deviceHint(specs, k));
    if (refusedDriver(d.driver, refusedDrivers()))
      throw usage(
        file,
        where([...at, k]),
        field,
        `${d.driver} reaches the host itself (its devices, files or sockets): a suite may not name it`,
        'docs/security.md says what a suite can reach',
      );
    const other = seen.get(d.id);
    if (other) throw usage(file, where([...at, k]), field, `duplicate device id ${d.id} (also ${other})`);
    seen.set(d.id, field);
    const form = Object.hasOwn(forms, d.driver) ? forms[d.driver] : undefined;
    if (perTest && (form?.bus !== 'pci' || form.controller || d.props.some(([p]) => p === 'bus')))
      throw usage(
        file,
        where([...at, k]),
        field,
        `${d.driver} cannot be hot-plugged for one test: a test's own devices are PCI short forms (${Object.keys(forms)
          .filter((f) => forms[f].bus === 'pci' && !forms[f].controller)
          .join(', ')})`,
        "put it in the suite's devices:, which are there from boot (docs/devices.md)",
      );
    return { ...d, where: { file, line: where([...at, k]), field } };
  });
}

/**
 * A test's params naming a module the suite does not build (#29.18), known
 * once the build names the modules: bad input before the upload, the setup
 * and any test, with the file, line and field.
 */
export function paramsForNoModule(suite: Pick<Suite, 'file' | 'tests'>, built: readonly string[]): KmodvmError | undefined {
  for (const t of suite.tests) {
    for (const name of Object.keys(t.params ?? {})) {
      if (built.includes(name)) continue;
      const at = t.paramsAt?.[name];
      return usage(
        suite.file,
        at?.line,
        at?.field ?? `tests.${t.name}.params`,
        `test ${t.name} gives parameters to ${name}, which the suite does not build (it builds ${built.join(', ') || 'no module'})`,
        "name one of the suite's modules (dashes and underscores are the same), or drop the entry",
      );
    }
  }
  return undefined;
}
