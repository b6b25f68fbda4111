// Instances that stay up: boot detached (vm:up), run the test steps on one
// (vm:test --reuse, vm:watch), power it down (vm:down).

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { guestRecordsDir } from '../build/guest-kbuild.ts';
import { type Config, splatRuleFiles } from '../core/config.ts';
import { fileSize, mkdirPrivate, readFrom, tagCacheDir } from '../core/disk.ts';
import { KmodvmError, setCrashDir } from '../core/errors.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { waitUntil } from '../core/wait.ts';
import { runSymbols } from '../debug/kernel-symbols.ts';
import type { SshSession } from '../guest/ssh.ts';
import type { Guest } from '../guest/steps.ts';
import { preflight } from '../host/preflight.ts';
import { ensureImage } from '../image/build.ts';
import { findImage, type ImageInfo } from '../image/image.ts';
import { failNthSplatCheck, noSplatCheck } from '../suite/checks/no-splat.ts';
import { makeChecks } from '../suite/checks/registry.ts';
import { type ResolvedSuite, resolveSuite } from '../suite/resolve.ts';
import { runSuite } from '../suite/run.ts';
import { askedForDump } from '../suite/run-test.ts';
import type { RunReport } from '../verdict/model.ts';
import { loadRules } from '../verdict/splat.ts';
import { connect, type InstanceState, instanceDir, isQemuAlive, lockInstance, lookup, recordInstance } from '../vm/instance.ts';
import { MUX_PID } from '../vm/mux.ts';
import { sshKeys } from '../vm/profile.ts';
import { assemble } from './assemble.ts';
import { bootVm, kvmClockCheck } from './boot.ts';
import { checkedBuildMode, startHostBuild } from './build-start.ts';
import { byoKernel, kernelLabel, withDebugKernel } from './kernel-choice.ts';
import { pickAccel } from './pick-accel.ts';
import { planRun, type RunPlan } from './plan.ts';
import { pruneHint } from './prune.ts';
import { runFlags } from './run-flags.ts';

/** Boots a detached instance and returns once SSH is ready. An instance already up is returned as it is. */
export async function upInstance(c: Config, name: string, log: (l: string) => void): Promise<{ state: InstanceState; already: boolean }> {
  const first = await lookup(c, name);
  if (first.alive) return { state: first.state, already: true };
  if (first.booting) log(`instance ${name}: another vm:up is booting it; waiting for that one`);
  // One vm:up of a name at a time: a second one waits here, then finds the first's instance up.
  const release = await lockInstance(c, name, c.timeouts.boot + 600);
  try {
    const l = await lookup(c, name, { holdingLock: true });
    if (l.alive) return { state: l.state, already: true };
    if ('staleNote' in l && l.staleNote && !first.booting) log(l.staleNote);
    return await bootInstance(c, name, log);
  } finally {
    await release();
  }
}

/** The boot of vm:up, under the instance's lock. */
async function bootInstance(c0: Config, name: string, log: (l: string) => void): Promise<{ state: InstanceState; already: boolean }> {
  await preflight(log);
  const img = await ensureImage(c0, log, { onBuilt: () => pruneHint(c0, log) });
  const c = await withDebugKernel(c0, log);
  const { accel: wanted, note, probeKvm } = await pickAccel(c);
  if (note) log(note);
  const dir = instanceDir(c, name);
  await mkdirPrivate(dir);
  const t0 = Date.now();
  // The same boot as vm:test's (pipeline.ts): resume, the KVM probe, the crash retry, your own kernel with its initrd.
  const byo = c.kernelImage ? await byoKernel(c, img, dir) : undefined;
  const b = await bootVm(c, img, wanted, dir, log, { probeKvm, byoInitrd: byo?.initrd, detached: { stderrFile: path.join(dir, 'qemu.stderr') } });
  if (c.accel === 'kvm') {
    const k = await kvmClockCheck(b.session);
    if (!k.ok) {
      b.session.close();
      await b.vm.kill();
      throw new KmodvmError('boot', k.message ?? 'KVM is not in use', { evidence: k.evidence });
    }
  }
  b.session.close();
  const { vm, how, accel } = b;
  const state: InstanceState = {
    name,
    pid: vm.pid!,
    port: vm.spec.sshPort,
    accel,
    imageKey: img.key,
    imageDir: img.dir,
    kernelVersion: byo ? kernelLabel(c, byo.version, img.manifest) : img.manifest.kernelVersion,
    startedAt: new Date().toISOString(),
    dir,
    serialLog: vm.spec.serialLog,
    ...sshKeys(c, img, Boolean(byo)),
  };
  await recordInstance(state);
  vm.release();
  await startMux(c, name, dir, log);
  log(
    `instance ${name}: up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${how === 'booted' ? 'booted' : `${how} from a snapshot`}; pid ${state.pid}, accel ${accel})`,
  );
  return { state, already: false };
}

/** Powers an instance off (sysrq o), kills it after a grace period, removes its state. */
/**
 * Starts the instance's mux (vm/mux.ts), detached like its QEMU, and waits
 * until it listens: then `kmodvm ssh -- CMD` needs no SSH handshake. It ends
 * with the QEMU. A mux that does not come up costs nothing: ssh connects itself.
 */
async function startMux(c: Pick<Config, 'cacheDir' | 'root'>, name: string, dir: string, log: (l: string) => void): Promise<void> {
  const child = spawn(process.execPath, [path.join(c.root, 'bin/kmodvm.js'), 'mux', '--name', name, '--cache-dir', c.cacheDir], {
    detached: true,
    stdio: 'ignore',
  });
  child.unref();
  let gone = false;
  child.once('exit', () => {
    gone = true;
  });
  const w = await waitUntil(() => existsSync(path.join(dir, MUX_PID)), { deadlineMs: 10_000, intervalMs: 20, alive: () => !gone });
  if (w.end !== 'ready') log(`instance ${name}: its ssh connection keeper did not start (${w.end}); kmodvm ssh connects itself`);
}

/** The mux's pid, when it runs. */
async function muxPid(s: InstanceState): Promise<number | undefined> {
  const pid = Number((await readFile(path.join(s.dir, MUX_PID), 'utf8').catch(() => '')).trim());
  return Number.isInteger(pid) && pid > 0 ? pid : undefined;
}

export async function downInstance(s: InstanceState, graceMs = 5000): Promise<'clean' | 'killed'> {
  const mux = await muxPid(s);
  if (mux) {
    try {
      process.kill(mux, 'SIGTERM');
    } catch {
      /* gone already */
    }
  }
  try {
    const session = await connect(s);
    await session.exec(['sh', '-c', 'echo o > /proc/sysrq-trigger'], { timeoutMs: 3000 });
    session.close();
  } catch {
    /* unreachable guest: the kill below handles it */
  }
  await waitUntil(() => !isQemuAlive(s.pid), { deadlineMs: graceMs });
  let how: 'clean' | 'killed' = 'clean';
  if (isQemuAlive(s.pid)) {
    process.kill(s.pid, 'SIGKILL');
    how = 'killed';
  }
  await rm(s.dir, { recursive: true, force: true });
  return how;
}

export interface InstanceRun {
  report: RunReport;
  needsReboot: string | undefined;
  state: InstanceState;
}

/** The instance's image, which must be the current recipe's. */
async function instanceImage(c: Pick<Config, 'cacheDir' | 'recipe' | 'root'>, s: InstanceState): Promise<ImageInfo> {
  const img = await findImage(c);
  if (!img || img.key !== s.imageKey)
    throw new KmodvmError('boot', `instance ${s.name} runs image ${s.imageKey}, not the current recipe's`, {
      hint: `restart it: ${kmodvmCommand('down', `--name ${s.name}`)} && ${kmodvmCommand('up', `--name ${s.name}`)}`,
    });
  return img;
}

const instanceReport = (s: InstanceState, runDir: string, started: number, rs: Pick<ResolvedSuite, 'suite' | 'seed'>): RunReport => ({
  verdict: 'fail',
  exitCode: 70,
  runDir,
  accel: s.accel,
  kernelVersion: s.kernelVersion,
  imageKey: s.imageKey,
  startedAt: new Date(started).toISOString(),
  durationMs: 0,
  checks: [],
  suite: rs.suite.file,
  seed: rs.seed,
});

/**
 * The suite's tests on a running instance (vm:test --reuse, vm:watch). The
 * instance keeps one build tree, so kbuild rebuilds only what changed. A test
 * that leaves the kernel untrusted restarts the instance for the next test;
 * needsReboot says whether the last one did.
 */
export async function testOnInstance(
  c0: Config,
  s0: InstanceState,
  runDir: string,
  log: (l: string) => void,
  o: { session?: SshSession; plan?: RunPlan } = {},
): Promise<InstanceRun> {
  const started = Date.now();
  const plan = o.plan ?? planRun(c0, await resolveSuite(c0));
  const { options: c, suite: rs } = plan;
  const rules = loadRules(splatRuleFiles(c));
  await mkdirPrivate(runDir);
  await tagCacheDir(path.dirname(runDir));
  await mkdir(path.join(runDir, 'steps'), { recursive: true });
  setCrashDir(runDir);
  let s = s0;
  const img = await instanceImage(c, s);
  const build = await checkedBuildMode(c, img, Boolean(c.kernelImage), rs, log);
  // Not niced: the guest is up, and the build is what the edit loop waits for.
  const hostBuild = startHostBuild(c, img, rs, path.join(s.dir, 'build'), { ...build, niceness: 0, log, verbose: c.verbose });
  const serialFrom = await fileSize(s.serialLog);
  // vm:watch keeps one connection across cycles (a handshake is ~0.3 s under TCG); otherwise one per run.
  let session = o.session ?? (await connect(s));
  const report = instanceReport(s, runDir, started, rs);
  const serials: { file: string; from: number }[] = [{ file: s.serialLog, from: serialFrom }];
  const fresh = async (why: string): Promise<Guest> => {
    log(`instance ${s.name}: restarting it fresh (${why})`);
    session.close();
    await downInstance(s);
    s = (await upInstance(c, s.name, log)).state;
    session = await connect(s);
    serials.push({ file: s.serialLog, from: 0 });
    return { session, serialLog: s.serialLog, qmpSocket: path.join(s.dir, 'qmp.sock') };
  };
  let r: Awaited<ReturnType<typeof runSuite>>;
  try {
    r = await runSuite({
      c,
      suite: rs.suite,
      tests: rs.selected,
      files: rs.files,
      elfLeftOut: rs.elfLeftOut,
      guest: { session, serialLog: s.serialLog, qmpSocket: path.join(s.dir, 'qmp.sock') },
      runDir,
      kver: s.kernelVersion,
      rules,
      checks: makeChecks(plan.checks),
      hostBuild,
      guestRecords: { dir: guestRecordsDir(c.cacheDir, s.imageKey), replay: c.replay },
      guestFallback: s.accel === 'kvm',
      reuse: true,
      fresh,
      ...runFlags(c, { instance: true, img, symbols: await runSymbols(c, img, log) }),
      log,
    });
    session = r.guest.session;
  } finally {
    if (!o.session || session !== o.session) session.close();
  }
  const serial = (await Promise.all(serials.map((x) => readFrom(x.file, x.from)))).join('\n');
  const splat = (c.failNth ? failNthSplatCheck : noSplatCheck)(r.kernelLog, serial, rules, undefined, { ownDump: askedForDump(runDir) });
  assemble(report, [], r, [splat], started);
  const bad = r.untrusted ?? (splat.ok ? undefined : `no-splat: ${splat.message}`) ?? report.checks.find((x) => !x.ok && x.failure === 'timeout')?.name;
  return { report, needsReboot: bad, state: s };
}
