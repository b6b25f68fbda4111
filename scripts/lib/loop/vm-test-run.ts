// vm:test as a function: suite → image → boot (or resume) → build → upload →
// the suite's tests → power off → verdict. The parts are pipeline.ts's and
// suite/'s; this file only puts them in order for a throwaway guest.
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { describeDebugKernel } from '../build/debug-kernel.ts';
import { guestRecordsDir } from '../build/guest-kbuild.ts';
import { hostAppCompiler } from '../build/host-kbuild.ts';
import { type Config, splatRuleFiles } from '../core/config.ts';
import { mkdirPrivate, tagCacheDir } from '../core/disk.ts';
import { KmodvmError, setCrashDir } from '../core/errors.ts';
import { settlesWithin } from '../core/wait.ts';
import { runSymbols } from '../debug/kernel-symbols.ts';
import type { SshSession } from '../guest/ssh.ts';
import type { Guest } from '../guest/steps.ts';
import { preflight } from '../host/preflight.ts';
import { ensureImage } from '../image/build.ts';
import { findImage, type ImageInfo } from '../image/image.ts';
import { buildTreeFor, lockTree } from '../suite/build-tree.ts';
import { failNthSplatCheck, noSplatCheck } from '../suite/checks/no-splat.ts';
import { makeChecks } from '../suite/checks/registry.ts';
import { runName } from '../suite/repeat.ts';
import { type ResolvedSuite, resolveSuite } from '../suite/resolve.ts';
import { runSuite } from '../suite/run.ts';
import { askedForDump } from '../suite/run-test.ts';
import { startStatic } from '../suite/static-check.ts';
import type { CheckResult, RunReport } from '../verdict/model.ts';
import { type CompiledRules, loadRules } from '../verdict/splat.ts';
import { requireRunning } from '../vm/instance.ts';
import { guestSpec } from '../vm/profile.ts';
import type { VmSpec } from '../vm/qemu-args.ts';
import { qemuVersion, resumable, snapshotKeyHere } from '../vm/resume.ts';
import { findSnapshot, resumingSpec, savingSpec, snapshotsDir } from '../vm/snapshot.ts';
import { Vm } from '../vm/vm.ts';
import { assemble, newRunDir } from './assemble.ts';
import { bootVm, kvmClockCheck } from './boot.ts';
import { checkedBuildMode, startHostBuild } from './build-start.ts';
import { testOnInstance } from './instance-run.ts';
import { checkKeepName, keepAsInstance } from './keep.ts';
import { byoKernel, kernelLabel, withDebugKernel } from './kernel-choice.ts';
import { pickAccel } from './pick-accel.ts';
import { planRun, type RunPlan } from './plan.ts';
import { pruneHint } from './prune.ts';
import { runFlags } from './run-flags.ts';

export interface RunOptions {
  log: (l: string) => void;
}

/** The image a dry run shows: the cached one, or placeholders for the one the run would build. */
async function shownImage(c: Pick<Config, 'cacheDir' | 'recipe' | 'root'>): Promise<{ img?: ImageInfo; shown: ImageInfo }> {
  const img = await findImage(c);
  const placeholder = {
    vmlinux: '<cache>/vmlinux',
    vmlinuz: '<cache>/vmlinuz',
    initrdLean: '<cache>/initrd-lean.cpio',
    initrdStock: '<cache>/initrd.img',
    rootfs: '<cache>/rootfs.qcow2',
    cmdline: [],
  } as unknown as ImageInfo;
  return { img, shown: img ?? placeholder };
}

/** --dry-run: the plan and the exact QEMU command lines, and nothing run. */
async function dryRun(plan: RunPlan, accel: 'kvm' | 'tcg', note: string | undefined, probeKvm: boolean, log: (l: string) => void): Promise<void> {
  const { options: c, suite: rs } = plan;
  const { img, shown } = await shownImage(c);
  const spec = guestSpec(c, shown, accel, 0, '<run-dir>');
  log(`plan: ${img ? `image ${img.dir} (cached)` : 'build the image first (not cached)'}; accel ${accel}${note ? ` (${note})` : ''}`);
  if (c.debugKernel) for (const l of await describeDebugKernel(c)) log(l);
  log(
    `plan: suite ${rs.suite.file}: build ${rs.suite.modules.map((m) => m.dir).join(', ')}${rs.suite.apps.length ? ` and ${rs.suite.apps.map((a) => a.dir).join(', ')}` : ''}; upload ${rs.files.length} files; tests ${rs.selected.map((s) => (s.run ? runName(s.test.name, s.run.k, s.run.of) : s.test.name)).join(', ')} (load ${rs.suite.load}); power off`,
  );
  log(`plan: checks ${plan.checks.ids.join(', ')}${plan.mode === 'fail-nth' ? `; instead of the tests, --fail-nth ${c.failNth} on each module's load` : ''}`);
  const show = (v: VmSpec): void => log(new Vm(v).commandLine().replace("'hostfwd=tcp:127.0.0.1:0-:22'", "'hostfwd=tcp:127.0.0.1:<free port>-:22'"));
  if (img && resumable(c, { probeKvm, byoInitrd: c.kernelImage || undefined })) {
    const key = await snapshotKeyHere(spec, { imageKey: img.key, qemuVersion: await qemuVersion() });
    const saved = await findSnapshot(c.cacheDir, key);
    const dir = saved ?? path.join(snapshotsDir(c.cacheDir), key);
    log(`plan: ${saved ? `resume the guest saved in ${dir}` : `boot once and save the guest as ${dir}, then resume it (docs/resume.md)`}`);
    if (!saved) show(savingSpec(spec, `${dir}.tmp-<pid>`, '<tmp>'));
    show(resumingSpec(spec, dir));
  } else {
    show(spec);
  }
}

export async function runVmTest(c0: Config, o: RunOptions): Promise<RunReport> {
  const started = Date.now();
  const log = o.log;
  // Bad input fails before anything starts.
  const plan = planRun(c0, await resolveSuite(c0));
  const c = plan.options;
  await checkKeepName(c);
  const rules = loadRules(splatRuleFiles(c));
  const { accel, note, probeKvm } = await pickAccel(c);
  if (c.dryRun) {
    await dryRun(plan, accel, note, probeKvm, log);
    return { verdict: 'pass', exitCode: 0, runDir: '', accel, startedAt: new Date(started).toISOString(), durationMs: 0, checks: [] };
  }
  if (c.reuse) {
    const state = await requireRunning(c, c.reuse, log);
    const runDir = newRunDir(c);
    log(`run directory: ${runDir} (on instance ${c.reuse})`);
    const r = await testOnInstance(c, state, runDir, log, { plan });
    if (r.needsReboot) log(`instance ${c.reuse}: the kernel can no longer be trusted (${r.needsReboot}); restart it before the next run`);
    return r.report;
  }
  const run = await prepareRun(plan, accel, note, started, log);
  const g: Guests = { serials: [], count: 0 };
  try {
    const head = await bootFirst(run, g, { probeKvm, rules, log });
    if (!g.vm || !g.session || !head.at(-1)!.ok)
      return assemble(run.report, head, undefined, await serialSplats(g.serials.length ? g.serials : [path.join(run.runDir, 'serial.log')], rules), started);
    return await testAndPowerOff(run, g, head, rules, log);
  } finally {
    g.session?.close();
    await g.vm?.kill();
    await run.releaseTree?.();
  }
}

/** "3 of 8 tests", and under --repeat or --shuffle how many runs in which order. */
function runsWords(rs: ResolvedSuite): string {
  const tests = new Set(rs.selected.map((s) => s.test.name)).size;
  const runs = rs.selected.length > tests ? `, ${rs.selected.length} runs` : '';
  const order = rs.seed === undefined ? '' : `, shuffled with seed ${rs.seed} (--shuffle=${rs.seed} repeats this order)`;
  return `${tests} of ${rs.suite.tests.length} tests${runs}${order}`;
}

/** What a throwaway run has set up before its guest boots. */
interface PreparedRun {
  plan: RunPlan;
  /** The plan's options, with the debug kernel's image and arguments when it boots one. */
  c: Config;
  rs: ResolvedSuite;
  img: ImageInfo;
  runDir: string;
  started: number;
  byo?: Awaited<ReturnType<typeof byoKernel>>;
  hostBuild: ReturnType<typeof startHostBuild>;
  staticCheck?: Promise<CheckResult>;
  releaseTree?: () => Promise<void>;
  report: RunReport;
  symbols?: string;
}

/** The guests of a run: the one in use, and every console so far. */
interface Guests {
  vm?: Vm;
  session?: SshSession;
  serials: string[];
  count: number;
}

/** Host set-up: preflight, image, run directory, build mode, the kept build tree, and the host build started in the background. */
async function prepareRun(plan: RunPlan, accel: 'kvm' | 'tcg', note: string | undefined, started: number, log: (l: string) => void): Promise<PreparedRun> {
  const rs = plan.suite;
  let c = plan.options;
  await preflight(log);
  const img = await ensureImage(c, log, { onBuilt: () => pruneHint(c, log) });
  c = await withDebugKernel(c, log);
  // The kernel's symbols (gdb, crash dumps): the debug kernel's own, else Debian's -dbg, cached or fetched now with --kernel-symbols.
  const symbols = await runSymbols(c, img, log);
  const runDir = newRunDir(c);
  await mkdirPrivate(runDir);
  await tagCacheDir(path.dirname(runDir));
  await mkdir(path.join(runDir, 'steps'), { recursive: true });
  setCrashDir(runDir);
  if (note) log(note);
  log(`run directory: ${runDir}`);
  log(`suite: ${rs.suite.file}, ${runsWords(rs)}`);
  if (rs.linksLeftOut.length) log(`suite: symlinks left out of the upload and the reports: ${rs.linksLeftOut.join(', ')}`);
  // Bring your own kernel: built against its own tree on the host (where that tree is), booted with its initrd.
  const byo = c.kernelImage ? await byoKernel(c, img, runDir) : undefined;
  const build = await checkedBuildMode(c, img, Boolean(byo), rs, log);
  log(`build: modules built in the ${build.mode} (${build.why})`);
  // One build tree per suite, kept across runs (suite/build-tree.ts), locked while this run uses it.
  // --coverage's objects are built with GCOV_PROFILE=y, in a tree of their own, so the plain build stays made.
  const tree = buildTreeFor(c.cacheDir, rs.suite, build.kdir, hostAppCompiler(img.manifest.kernelGccMajor), c.coverage ? 'gcov' : '');
  const releaseTree = build.mode === 'host' ? await lockTree(tree, log) : undefined;
  const hostBuild = startHostBuild(c, img, rs, tree, { ...build, log, verbose: c.verbose });
  // static: in the suite: W=1, sparse and checkpatch beside the build and the boot (#27.3).
  const staticCheck = rs.suite.static ? startStatic(c, rs, { kdir: build.kdir, mode: rs.suite.static, log }) : undefined;
  const report: RunReport = {
    verdict: 'fail',
    exitCode: 70,
    runDir,
    accel,
    kernelVersion: byo ? kernelLabel(c, byo.version, img.manifest) : img.manifest.kernelVersion,
    imageKey: img.key,
    qemuVersion: await qemuVersion(),
    startedAt: new Date(started).toISOString(),
    durationMs: 0,
    checks: [],
    suite: rs.suite.file,
    seed: rs.seed,
  };
  return { plan, c, rs, img, runDir, started, byo, hostBuild, staticCheck, releaseTree, report, symbols };
}

/** Under --keep-on-fail a guest starts detached, so that it can outlive this run (killed at its end unless it is kept). */
const keptBoot = (c: Pick<Config, 'keepOnFail'>, dir: string) => (c.keepOnFail ? { stderrFile: path.join(dir, 'qemu.stderr') } : undefined);

/** Boots (or resumes) the first guest; its checks: boot, and on KVM the clock. A boot failure is a failed check, not a throw. */
async function bootFirst(run: PreparedRun, g: Guests, o: { probeKvm: boolean; rules: CompiledRules; log: (l: string) => void }): Promise<CheckResult[]> {
  const { c, img, runDir, report } = run;
  try {
    const b = await bootVm(c, img, report.accel as 'kvm' | 'tcg', runDir, o.log, {
      probeKvm: o.probeKvm,
      byoInitrd: run.byo?.initrd,
      detached: keptBoot(c, runDir),
    });
    g.vm = b.vm;
    g.session = b.session;
    g.count = 1;
    g.serials.push(b.vm.spec.serialLog);
    Object.assign(report, { bootToSshMs: b.bootMs, accel: b.accel, bootHow: b.how });
    const head: CheckResult[] = [
      {
        name: 'boot',
        ok: true,
        durationMs: b.bootMs,
        message: `SSH ready on 127.0.0.1:${b.vm.spec.sshPort}${b.how === 'booted' ? '' : ` (${b.how} from a snapshot)`}`,
      },
    ];
    if (c.accel === 'kvm') head.push(await kvmClockCheck(b.session));
    return head;
  } catch (e) {
    if (!(e instanceof KmodvmError)) throw e;
    const evidence = [e.evidence, e.hint && `next: ${e.hint}`].filter(Boolean).join('\n');
    return [{ name: 'boot', ok: false, failure: e.failure, message: e.message, evidence, durationMs: Date.now() - run.started }];
  }
}

/** The suite on the guest (a fresh one after a test that broke the kernel), then power-off and the last splat check. */
async function testAndPowerOff(run: PreparedRun, g: Guests, head: CheckResult[], rules: CompiledRules, log: (l: string) => void): Promise<RunReport> {
  const { c, rs, img, runDir, report } = run;
  const fresh = async (): Promise<Guest> => {
    g.session?.close();
    g.session = undefined;
    await g.vm?.kill();
    const dir = path.join(runDir, `guest-${++g.count}`);
    await mkdirPrivate(dir);
    const b = await bootVm(c, img, report.accel as 'kvm' | 'tcg', dir, log, { byoInitrd: run.byo?.initrd, detached: keptBoot(c, dir) });
    g.vm = b.vm;
    g.session = b.session;
    g.serials.push(b.vm.spec.serialLog);
    return { session: b.session, serialLog: b.vm.spec.serialLog, qmpSocket: b.vm.spec.qmpSocket };
  };
  const r = await runSuite({
    c,
    suite: rs.suite,
    tests: rs.selected,
    files: rs.files,
    elfLeftOut: rs.elfLeftOut,
    guest: { session: g.session!, serialLog: g.vm!.spec.serialLog, qmpSocket: g.vm!.spec.qmpSocket },
    runDir,
    kver: img.manifest.kernelVersion,
    rules,
    checks: makeChecks(run.plan.checks),
    hostBuild: run.hostBuild,
    staticCheck: run.staticCheck,
    guestRecords: { dir: guestRecordsDir(c.cacheDir, img.key), replay: c.replay },
    guestFallback: report.accel === 'kvm' && !run.byo,
    fresh,
    ...runFlags(c, { instance: false, img, symbols: run.symbols }),
    log,
  });
  const tail: CheckResult[] = [c.keepOnFail && r.stoppedAt ? await keep(run, g, r.stoppedAt, log) : await powerOff(g)];
  // A hung test made kmodvm ask for a sysrq task dump: only then is one in the run's log ours (suite/judge-test.ts).
  tail.push(
    (run.c.failNth ? failNthSplatCheck : noSplatCheck)(r.kernelLog, await consoles(g.serials), rules, undefined, { ownDump: askedForDump(run.runDir) }),
  );
  return assemble(report, head, r, tail, run.started);
}

/** Powers the guest off (sysrq o), and kills it after a grace period; at once when its kernel has no sysrq (the debug kernel's): its disk is a throwaway layer. */
async function powerOff(g: Guests): Promise<CheckResult> {
  const t1 = Date.now();
  const r = await g.session?.exec(['sh', '-c', 'echo o > /proc/sysrq-trigger'], { timeoutMs: 5000 }).catch(() => undefined);
  g.session?.close();
  g.session = undefined;
  if (!(r?.exitCode !== undefined && r.exitCode !== 0)) await settlesWithin(g.vm!.waitExit(), 5000);
  await g.vm!.kill();
  return { name: 'poweroff', ok: true, durationMs: Date.now() - t1 };
}

/** --keep-on-fail: the failed test's guest stays up as an instance, and this run lets go of it. */
async function keep(run: PreparedRun, g: Guests, failed: string, log: (l: string) => void): Promise<CheckResult> {
  const kept = await keepAsInstance(run.c, {
    vm: g.vm!,
    img: run.img,
    byo: Boolean(run.byo),
    accel: run.report.accel,
    kernelVersion: run.report.kernelVersion ?? '',
    failed,
  });
  g.session?.close();
  g.session = undefined;
  g.vm = undefined;
  log(`${kept.message}:\n  ${kept.evidence!.split('\n').join('\n  ')}`);
  return kept;
}

/** The consoles of a run's guests, joined. */
const consoles = async (files: string[]): Promise<string> => (await Promise.all(files.map((f) => readFile(f, 'utf8').catch(() => '')))).join('\n');

/** A splat on the console of a run that stopped early (a boot that crashed, a wrong clock source). */
async function serialSplats(files: string[], rules: CompiledRules): Promise<CheckResult[]> {
  const c = noSplatCheck('', await consoles(files), rules);
  return c.ok ? [] : [c];
}
