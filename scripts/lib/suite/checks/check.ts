// The Check interface. A check is one room: what it adds to the guest's
// kernel command line, the guest steps it runs around each test, and its
// judgement over a test's evidence. The runner (run-test.ts, run.ts) and
// kmodvm judge (rejudge.ts) iterate the checks a run's plan names; none of
// them knows what a check does. Adding one is a file here, a line in
// registry.ts and its test (README "Layout").
import type { z } from 'zod';
import type { Timeouts } from '../../core/config.ts';
import type { Guest, StepRecord } from '../../guest/steps.ts';
import type { Sources } from '../../verdict/frames.ts';
import type { CoverageMin } from '../../verdict/lcov.ts';
import type { ModuleLayout } from '../../verdict/leaks.ts';
import type { CheckResult } from '../../verdict/model.ts';
import type { CompiledRules } from '../../verdict/splat.ts';
import type { Transcript } from '../../verdict/transcript.ts';
import type { GuestDevices } from '../devices-plug.ts';
import type { LoadedModule } from '../test-plan.ts';

/** What the guest returned for one test: the record the checks judge, kept as evidence.json for kmodvm judge. */
export interface TestEvidence {
  /** insmod records, in load order (a load stops at the first failure). */
  loads: StepRecord[];
  run?: StepRecord;
  /** rmmod records, in unload order. */
  unloads: StepRecord[];
  taintBefore?: number;
  taintAfter?: number;
  pid?: string;
  /** The kernel log from before the test's first insmod to after its last rmmod. */
  kernelLog: string;
  /** The serial console over the same time. */
  serial: string;
  /** Evidence gathered when the command hung (task dump, console tail). */
  hangEvidence?: string;
  /** The source lines of the modules' frames in the kernel log (suite/sources.ts). */
  sources?: Sources;
  /** What the checks' own guest steps found, by check id (GuestEnv.report), for their judgement. */
  steps?: Record<string, CheckResult[]>;
}

/** What the suite expects of one test. */
export interface TestExpect {
  exitCode: number;
  transcript?: { parsed: Transcript; file: string };
  /** The modules were loaded by this test, so first-load lines may be expected. */
  loadsHere: boolean;
  /** The kunit: dir whose KUnit modules this test loads (the test kmodvm adds for it). */
  kunit?: string;
}

/** What every check's judgement is given besides the evidence. */
export interface JudgeContext {
  expect: TestExpect;
  rules: CompiledRules;
  /** The first load of an out-of-tree module this boot: the kernel prints its first-load lines. */
  firstLoad: boolean;
  /** A step hung, so kmodvm asked the guest for a sysrq task dump: one in the log is ours. */
  hung: boolean;
}

export interface Judgement {
  results: CheckResult[];
  /** Why the kernel can no longer be trusted after this test: the next test gets a fresh guest. */
  untrusted?: string;
  /** Named captures of the output (a transcript's placeholders). */
  captures?: Record<string, string>;
}

/** A test's lifecycle checks (the suite file's lifecycle:, schema.ts). */
export interface Lifecycle {
  unbind_bind?: boolean;
  hot_unplug?: boolean;
  reload?: number;
  /** The holder's command line: rmmod while it holds a device open (held-rmmod.ts). */
  held_rmmod?: string;
}

/** What a check's guest steps are given. */
export interface GuestEnv {
  guest: Guest;
  /** The run directory, where a check keeps what it read (coverage/). */
  runDir: string;
  /** The test under way; absent after the last test of load: once. */
  test?: string;
  timeouts: Timeouts;
  record: (r: StepRecord) => Promise<void>;
  /** The test's modules' layouts a check read before their rmmod: the source lookup names addresses in an unloaded module with them. */
  layouts: ModuleLayout[];
  /** The guest's hot devices (suite/devices-plug.ts), when the suite names any. */
  devices?: GuestDevices;
  /** The test's lifecycle checks (its own, else the suite's). */
  lifecycle?: Lifecycle;
  /** The insmod parameters of a module in this test. */
  params?: (m: LoadedModule) => string[];
  /** Keeps a result of a check's guest step in the test's evidence, where its judge() finds it. */
  report?: (checkId: string, r: CheckResult) => void;
}

/** One check of a run, made for that run by its room's create(): any state it keeps is its own. */
export interface Check {
  readonly id: string;
  /** Arguments for the guest kernel's command line (merged by kernelArgsOf: slub_debug flags combine). */
  readonly kernelArgs?: readonly string[];
  /** A shell fragment run in the guest right after each test's command, before its state is read. */
  readonly afterTest?: string;
  /** Where its results go in the test's report: right after the command's own, or (default) after the unloads. */
  readonly after?: 'run' | 'unload';
  /** Before each module's rmmod. */
  beforeUnload?(env: GuestEnv, m: LoadedModule): Promise<void>;
  /** After the modules' rmmods; clean when every one succeeded (a module still loaded cannot be checked). */
  afterUnload?(env: GuestEnv, modules: readonly LoadedModule[], clean: boolean): Promise<void>;
  /** After the last test: the run's own results (the suite's coverage). */
  afterRun?(): Promise<CheckResult[]>;
  /** Its verdict on one test; undefined when it has nothing to say (e.g. no transcript to match). */
  judge?(e: TestEvidence, ctx: JudgeContext): Judgement | undefined;
}

/** --coverage's choice (checks/coverage.ts). */
export interface CoverageChoice {
  min?: CoverageMin;
  /** The gcov of the modules' compiler. */
  gcov: string;
}

/** What decides which checks a run has. */
export interface CheckChoice {
  memcheck: boolean;
  debugKernel: boolean;
  /** The suite names kunit: dirs. */
  kunit?: boolean;
  /** --coverage (checks/coverage.ts). */
  coverage?: CoverageChoice;
  /** The lifecycle options the suite or any of its tests turns on (unbind_bind, hot_unplug, held_rmmod, reload). */
  lifecycle?: readonly string[];
}

/** A check's registration: its id, when a run has it, its setting under the suite's checks:, and how to make it. */
export interface CheckRoom<S = unknown> {
  id: string;
  /** One line for docs and the JSON Schema. */
  about: string;
  /** The suite's `checks: {<id>: …}` value, when the check takes one; giving it turns the check on. */
  setting?: z.ZodType<S>;
  /** Whether a run has the check without a setting. */
  wanted(choice: CheckChoice): boolean;
  create(o: { choice: CheckChoice; setting?: S }): Check;
}
