// The one test-on-a-guest path: a suite's tests on an open SSH session,
// one after another, for vm:test (a fresh or resumed guest, or --reuse),
// vm:watch, lab:check and bench alike. A failed test does not stop the next;
// a test after which the kernel cannot be trusted (a splat, a new taint
// flag, a failed rmmod, a hang) hands the next test a fresh guest.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { mkdirPrivate } from '../core/disk.ts';
import { tail } from '../core/proc.ts';
import type { DumpWatch } from '../debug/dump.ts';
import type { Guest } from '../guest/steps.ts';
import { recordStep, runStep, type StepRecord } from '../guest/steps.ts';
import type { ModuleLayout } from '../verdict/leaks.ts';
import { type CheckResult, testReport as report, type TestReport } from '../verdict/model.ts';
import { loadDeviceForms } from '../vm/device-forms.ts';
import { type DevicePlan, planDevices } from '../vm/devices.ts';
import { deviceSocketOf } from '../vm/qemu-args.ts';
import { DeviceChannel } from './device-channel.ts';
import { GuestDevices } from './devices-plug.ts';
import { armDump, dumpWanted } from './dump-step.ts';
import { runFailNth } from './fail-nth-sweep.ts';
import { unloadFixtures } from './fixtures.ts';
import { buildChecks, type SuiteHostBuild } from './host-build.ts';
import { unloadInTreeDeps } from './in-tree-deps.ts';
import { allDevices, paramsForNoModule } from './load.ts';
import { hostModules, type Prepared, prepareGuest } from './prepare.ts';
import { runName } from './repeat.ts';
import { runOneTest } from './run-test.ts';
import { rmmodStep, fileSafe as safe } from './test-plan.ts';
import type { SuiteRunInput } from './types.ts';

export interface SuiteRunResult {
  before: CheckResult[];
  tests: TestReport[];
  after: CheckResult[];
  kernelLog: string;
  untrusted?: string;
  guest: Guest;
  /** --until-fail (or --keep-on-fail) stopped the runs here. */
  stoppedAt?: string;
}

/** The build: the host's result as checks; under KVM a failed host build goes to the guest. */
async function hostResult(i: SuiteRunInput): Promise<{ checks: CheckResult[]; host?: SuiteHostBuild; failed: boolean }> {
  if (!i.hostBuild) return { checks: [], failed: false };
  const hb = await i.hostBuild;
  await writeFile(path.join(i.runDir, 'host-build.log'), [`tree: ${hb.tree}`, ...hb.dirs.map((d) => `== ${d.kind} ${d.dir}\n${d.build.output}`)].join('\n'));
  const checks = buildChecks(hb);
  if (hb.ok) {
    // A test's params for a module the build did not make: bad input now, before the upload, the setup and the tests (#29.18).
    const bad = paramsForNoModule(
      i.suite,
      hostModules(i.suite, hb).map((m) => m.name),
    );
    if (bad)
      return {
        checks: [...checks, { name: 'params', ok: false, failure: 'usage', durationMs: 0, message: bad.message, evidence: `next: ${bad.hint}` }],
        failed: true,
      };
    return { checks, host: hb, failed: false };
  }
  if (i.guestFallback) {
    i.log('build: the host build failed; building in the guest instead (KVM makes that cheap)');
    return {
      checks: checks.map((x) =>
        x.ok ? x : { ...x, name: `${x.name}-host`, ok: true, failure: undefined, message: 'failed on the host; built in the guest instead' },
      ),
      failed: false,
    };
  }
  return { checks, failed: true };
}

export async function runSuite(i: SuiteRunInput): Promise<SuiteRunResult> {
  const { c } = i;
  let n = 0;
  const record = async (prefix: string, r: StepRecord): Promise<void> =>
    recordStep(i.runDir, ++n, { ...r, name: safe(prefix ? `${prefix}-${r.name}` : r.name) });
  i.guest.session.warmUpload();
  void i.guest.session.warmShells(2);
  await mkdirPrivate(i.runDir);
  await mkdir(path.join(i.runDir, 'steps'), { recursive: true });
  const built = await hostResult(i);
  const before: CheckResult[] = [...built.checks, ...(i.staticCheck ? [await i.staticCheck] : [])];
  const res: SuiteRunResult = { before, tests: [], after: [], kernelLog: '', guest: i.guest };
  if (built.failed) return res;
  const plans = devicePlans(i);
  const prepare = async (reuse: boolean): Promise<Prepared> => {
    const p = await prepareGuest({
      devices: plans.length ? new GuestDevices(res.guest, plans, c.timeouts, (r) => record('', r)) : undefined,
      c,
      suite: i.suite,
      session: res.guest.session,
      files: i.files,
      elfLeftOut: i.elfLeftOut,
      kver: i.kver,
      host: built.host,
      guestRecords: i.guestRecords,
      reuse,
      log: i.log,
    });
    for (const r of p.records) await record('', r);
    channel?.close();
    channel = p.ok ? await openChannel(i, res.guest, p.devices, plans) : undefined;
    // --dump: each guest armed once it is ready; one that cannot give a dump ends the run here.
    dumps.watch?.close();
    const d = p.ok ? await armDump(i, res.guest, p.modules) : {};
    dumps.watch = d.watch;
    return d.failed ? { ...p, ok: false, checks: [...p.checks, d.failed], channel } : { ...p, channel };
  };
  let channel: DeviceChannel | undefined;
  const dumps: Dumps = { count: 0 };
  const prep = await prepare(Boolean(i.reuse));
  before.push(...prep.checks);
  if (!prep.ok) return res;
  if (c.failNth) {
    const f = await runFailNth(i, res.guest, prep.modules, (r) => record('', r));
    Object.assign(res, { tests: f.tests, kernelLog: f.kernelLog, untrusted: f.untrusted });
  } else {
    const { untrusted, last } = await runTests(i, res, prep, prepare, record, dumps);
    res.untrusted = i.suite.load === 'once' && !untrusted ? await unloadOnce(i, res, last.modules, record) : untrusted;
    // The kernel's own modules the suite needed come out after the suite's, unless the kernel is no longer to be trusted.
    if (!res.untrusted) res.after.push(...(await unloadInTreeDeps(res.guest.session, last.deps, c.timeouts, (r) => record('', r))));
    if (!res.untrusted) res.after.push(...(await unloadFixtures(res.guest.session, last.fixtures, c.timeouts, (r) => record('', r))));
    // The checks' own results over the run (the suite's coverage).
    for (const k of i.checks) if (k.afterRun) res.after.push(...(await k.afterRun()));
  }
  channel?.close();
  dumps.watch?.close();
  if (dumpWanted(i) && prep.ok && !dumps.count) i.log('dump: no guest panicked or oopsed, so no dump was written');
  const last = await res.guest.session.exec(['dmesg', '-c'], { timeoutMs: c.timeouts.command * 1000 }).catch(() => undefined);
  res.kernelLog += last?.stdout ?? '';
  await writeFile(path.join(i.runDir, 'dmesg.log'), res.kernelLog);
  return res;
}

/** kmodvm-device's host end, for a guest with hot devices: its socket is beside the QMP socket (an instance that was started without them has none). */
async function openChannel(
  i: SuiteRunInput,
  guest: Guest,
  devices: GuestDevices | undefined,
  plans: readonly DevicePlan[],
): Promise<DeviceChannel | undefined> {
  const hot = new Set(plans.filter((p) => p.hot).map((p) => p.decl.id));
  if (!devices || !hot.size || !guest.qmpSocket) return undefined;
  return DeviceChannel.open(deviceSocketOf(guest.qmpSocket), devices, hot, i.c.timeouts.command * 1000).catch((e: Error) => {
    i.log(`note: kmodvm-device has no host end in this guest (${e.message}); start the instance again from the suite's directory`);
    return undefined;
  });
}

/** The plan of the suite's devices, the same as the guest's (vm/profile.ts guestSpec: the same declarations in the same order give the same ports). */
function devicePlans(i: SuiteRunInput): DevicePlan[] {
  const decls = allDevices(i.suite);
  return decls.length ? planDevices(decls, loadDeviceForms(i.c.root), i.runDir).plans : [];
}

type RecordStep = (prefix: string, r: StepRecord) => Promise<void>;

/** --dump's watcher on the guest in use, and how many dumps the run wrote. */
interface Dumps {
  watch?: DumpWatch;
  count: number;
}

/** Each selected test in order; after a test that broke the kernel, the next one gets a fresh guest, prepared again; so does each --repeat run after the first (unless --same-guest). */
async function runTests(
  i: SuiteRunInput,
  res: SuiteRunResult,
  first: Prepared,
  prepare: (reuse: boolean) => Promise<Prepared>,
  record: RecordStep,
  dumps: Dumps,
) {
  let prep = first;
  let untrusted: string | undefined;
  // The last test's state after is the next one's state before, on the same guest.
  let carried: { taint?: number } | undefined;
  for (const [at, sel0] of i.tests.entries()) {
    const sel = sel0.run ? { ...sel0, test: { ...sel0.test, name: runName(sel0.test.name, sel0.run.k, sel0.run.of) } } : sel0;
    const base = sel0.run ? sel0.test.name : undefined;
    let freshGuest: string | undefined;
    const why = untrusted ?? (sel.run && at > 0 && !i.repeat?.sameGuest ? '--repeat: each run on its own guest' : undefined);
    if (why && i.fresh) {
      i.log(`test ${sel.test.name}: a fresh guest first (${why})`);
      freshGuest = why;
      res.guest = await i.fresh(why);
      carried = undefined;
      prep = await prepare(false);
      if (!prep.ok) {
        res.tests.push({
          ...report(
            sel.test.name,
            prep.checks.filter((x) => !x.ok),
            0,
            freshGuest,
          ),
          base,
        });
        untrusted = 'the fresh guest could not be prepared';
        continue;
      }
    }
    i.log(`test ${sel.test.name}`);
    if (dumps.watch) dumps.watch.test = sel.test.name;
    const t = await runOneTest(i, res.guest, sel, prep, (r) => record(sel.test.name, r), carried);
    res.kernelLog += t.logBefore + t.kernelLog;
    untrusted = t.untrusted;
    // The guest panicked during the test: its dump is a step of the test, and the next test needs a fresh guest.
    const dumped = await dumps.watch?.settle();
    if (dumped) {
      t.checks.push(dumped);
      dumps.count++;
      dumps.watch = undefined;
      untrusted ??= 'the guest panicked';
      i.log(`dump: ${dumped.message}`);
    }
    carried = t.taintAfter === undefined ? undefined : { taint: t.taintAfter };
    const done = { ...report(sel.test.name, t.checks, t.durationMs, freshGuest), captures: t.captures, base };
    res.tests.push(done);
    if (i.repeat?.untilFail && !done.ok) {
      res.stoppedAt = `${sel.test.name}, ${at + 1} of ${i.tests.length} runs`;
      i.log(`stopped at the first failure (--until-fail${i.repeat.keep ? ', --keep-on-fail' : ''}): ${res.stoppedAt}`);
      break;
    }
  }
  return { untrusted, last: prep };
}

/** load: once: the modules come out in reverse order after the last test; a failed rmmod leaves the kernel untrusted. */
async function unloadOnce(i: SuiteRunInput, res: SuiteRunResult, modules: Prepared['modules'], record: RecordStep): Promise<string | undefined> {
  let untrusted: string | undefined;
  const env = { guest: res.guest, runDir: i.runDir, timeouts: i.c.timeouts, record: (r: StepRecord) => record('', r), layouts: [] as ModuleLayout[] };
  for (const m of [...modules].reverse()) {
    for (const k of i.checks) await k.beforeUnload?.(env, m);
    const r = await runStep(res.guest.session, rmmodStep(m, i.c.timeouts));
    await record('', r);
    const evidence = r.ok ? undefined : tail(r.result.stderr, 10);
    res.after.push({ name: r.name, ok: r.ok, failure: r.failure, durationMs: r.result.durationMs, message: r.message, evidence });
    if (!r.ok) untrusted = `${r.name} failed`;
  }
  // The leak lines go to the guest's console, where the run-wide splat check reads them.
  for (const k of i.checks) await k.afterUnload?.(env, modules, !untrusted);
  return untrusted;
}
