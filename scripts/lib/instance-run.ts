// Instances that stay up: boot detached (vm:up), run the test steps on one
// (vm:test --reuse, vm:watch), power it down (vm:down).
import { mkdir, open, readFile, rename, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { chooseAccel, hostFacts } from './accel.ts';
import { resolveIn, splatRuleFiles, type Config } from './config.ts';
import { KmodvmError } from './errors.ts';
import { guestRecordsDir } from './guest-kbuild.ts';
import { chooseBuildMode, headersKdir, hostAppCompiler, hostBuildApp, hostBuildModule, hostHasCompiler } from './hostbuild.ts';
import { ensureImage, findImage } from './image.ts';
import { connect, instanceDir, isQemuAlive, lookup, writeState, type InstanceState } from './instance.ts';
import { preflight } from './preflight.ts';
import { verdictOf, type Check, type RunReport } from './report.ts';
import { APP, MODULE, testOnSession } from './session-test.ts';
import { crashedBeforeInit, findSplats, formatSplat, loadRules } from './splat.ts';
import type { SshSession } from './ssh.ts';
import { parseTranscript } from './transcript.ts';
import { guestSpec } from './profile.ts';
import { SSHD_READY_MARKER, freePort, Vm } from './vm.ts';
import { resumable, resumeGuest, type BootHow } from './resume.ts';
import { existsSync } from 'node:fs';

/** Boots a detached instance and returns once SSH is ready. An instance already up is returned as it is. */
export async function upInstance(c: Config, name: string, log: (l: string) => void): Promise<{ state: InstanceState; already: boolean }> {
  const l = await lookup(c, name);
  if (l.alive) return { state: l.state, already: true };
  if (l.staleNote) log(l.staleNote);
  await preflight(log);
  const img = await ensureImage(c, log);
  const { accel, note } = chooseAccel(c.accel, hostFacts());
  if (note) log(note);
  const dir = instanceDir(c, name);
  await mkdir(dir, { recursive: true });
  const t0 = Date.now();
  const privateKey = await readFile(img.clientKey, 'utf8');
  const hostPublicKey = await readFile(img.hostPub, 'utf8');
  const detached = { stderrFile: path.join(dir, 'qemu.stderr') };
  let how: BootHow = 'booted';
  const boot = async (): Promise<Vm> => {
    if (resumable(c, {})) {
      const r = await resumeGuest(c, img, guestSpec(c, img, accel, await freePort(), dir), log, detached);
      if (r) { r.session.close(); how = r.how; return r.vm; }
    }
    const vm = new Vm(guestSpec(c, img, accel, await freePort(), dir));
    log(`$ ${vm.commandLine()}`);
    vm.start({ detached });
    const session = await vm.waitForSsh({ privateKey, hostPublicKey, deadlineMs: c.timeouts.boot * 1000, readyMarker: SSHD_READY_MARKER })
      .catch(async (e) => { await vm.kill(); throw e; });
    session.close();
    return vm;
  };
  const vm = await boot().catch(async (e) => {
    // As in vm:test: a guest kernel that crashed in its own boot, before our init, gets one more boot.
    const serial = path.join(dir, 'serial.log');
    const crash = crashedBeforeInit(await readFile(serial, 'utf8').catch(() => ''), loadRules(splatRuleFiles(c)));
    if (!crash) throw e;
    await rename(serial, path.join(dir, 'serial-crashed-boot.log'));
    log(`instance ${name}: the guest kernel crashed during its own boot, before our init ran (${crash.line.trim()}); booting once more`);
    return boot();
  });
  const state: InstanceState = {
    name, pid: vm.pid!, port: vm.spec.sshPort, accel, imageKey: img.key, imageDir: img.dir, kernelVersion: img.manifest.kernelVersion,
    startedAt: new Date().toISOString(), dir, serialLog: vm.spec.serialLog, clientKey: img.clientKey, hostPub: img.hostPub,
  };
  await writeState(state);
  // For plain ssh(1): the pinned host key, so nobody has to turn checking off.
  await writeFile(path.join(dir, 'known_hosts'), `[127.0.0.1]:${state.port} ${(await readFile(img.hostPub, 'utf8')).trim()}\n`);
  vm.release();
  log(`instance ${name}: up in ${((Date.now() - t0) / 1000).toFixed(1)} s (${how === 'booted' ? 'booted' : `${how} from a snapshot`}; pid ${state.pid}, accel ${accel})`);
  return { state, already: false };
}

/** Powers an instance off (sysrq o), kills it after a grace period, removes its state. */
export async function downInstance(s: InstanceState, graceMs = 5000): Promise<'clean' | 'killed'> {
  try {
    const session = await connect(s);
    await session.exec(['sh', '-c', 'echo o > /proc/sysrq-trigger'], { timeoutMs: 3000 });
    session.close();
  } catch { /* unreachable guest: the kill below handles it */ }
  const deadline = Date.now() + graceMs;
  while (isQemuAlive(s.pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
  let how: 'clean' | 'killed' = 'clean';
  if (isQemuAlive(s.pid)) { process.kill(s.pid, 'SIGKILL'); how = 'killed'; }
  await rm(s.dir, { recursive: true, force: true });
  return how;
}

/** Bytes of the serial log so far, to scan only what a run adds. */
async function serialSize(file: string): Promise<number> {
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return 0;
  try { return (await fh.stat()).size; } finally { await fh.close(); }
}

export interface InstanceRun { report: RunReport; needsReboot: string | undefined }

/** The test steps on a running instance. needsReboot names why the kernel can no longer be trusted (splat, new taint, failed rmmod, hang). */
export async function testOnInstance(c: Config, s: InstanceState, runDir: string, log: (l: string) => void, o: { session?: SshSession } = {}): Promise<InstanceRun> {
  const started = Date.now();
  const transcriptFile = resolveIn(c, c.transcript);
  const transcript = parseTranscript(await readFile(transcriptFile, 'utf8'), c.transcript);
  const rules = loadRules(splatRuleFiles(c));
  const moduleDir = resolveIn(c, c.moduleDir);
  const appDir = resolveIn(c, c.appDir);
  await mkdir(path.join(runDir, 'steps'), { recursive: true });
  const img = await findImage(c);
  if (!img || img.key !== s.imageKey) throw new KmodvmError('boot', `instance ${s.name} runs image ${s.imageKey}, not the current recipe's`, { hint: `restart it: npm run vm:down -- --name ${s.name} && npm run vm:up -- --name ${s.name}` });
  const kdir = headersKdir(img.dir, img.manifest.kernelVersion);
  const build = chooseBuildMode(c.build, { gccMajor: img.manifest.kernelGccMajor, hostHasCompiler: hostHasCompiler(img.manifest.kernelGccMajor), headers: existsSync(kdir) });
  const hostBuild = build.mode === 'host'
    // The instance keeps one build tree, so kbuild rebuilds only what changed. Not niced:
    // the guest is up, and the build is what the edit loop waits for.
    ? hostBuildModule({ moduleDir, outDir: path.join(s.dir, 'build', 'kernel-module'), kdir, moduleName: MODULE, timeoutMs: c.timeouts.build * 1000, replay: c.replay, niceness: 0 })
    : undefined;
  const cc = hostAppCompiler(img.manifest.kernelGccMajor);
  const hostApp = build.mode === 'host' && cc
    ? hostBuildApp({ appDir, outDir: path.join(s.dir, 'build', 'userapp'), appName: APP, cc, timeoutMs: c.timeouts.build * 1000, niceness: 0 })
    : undefined;
  const serialFrom = await serialSize(s.serialLog);
  // vm:watch keeps one connection across cycles (a handshake is ~0.3 s under TCG); otherwise one per run.
  const session = o.session ?? await connect(s);
  const checks: Check[] = [];
  let finalDmesg = '';
  try {
    const r = await testOnSession({
      c, session, runDir, moduleDir, appDir, transcript, transcriptFile, hostBuild, guestRecords: { dir: guestRecordsDir(c.cacheDir, s.imageKey), replay: c.replay }, hostBuildDir: path.join(s.dir, 'build', 'kernel-module'), hostApp, hostAppDir: path.join(s.dir, 'build', 'userapp'), guestFallback: s.accel === 'kvm', reuse: true, log,
      serialTail: async () => (await readFile(s.serialLog, 'utf8')).split('\n').slice(-15).join('\n'),
    });
    checks.push(...r.checks);
    finalDmesg = r.finalDmesg;
  } finally {
    if (!o.session) session.close();
  }
  const serial = (await readFile(s.serialLog)).subarray(serialFrom).toString('utf8');
  const splats = [...findSplats(finalDmesg, rules, 'dmesg'), ...findSplats(serial, rules, 'serial.log')];
  checks.push(splats.length
    ? { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: `${splats[0].id}: ${splats[0].line}`, evidence: formatSplat(splats[0]) }
    : { name: 'no-splat', ok: true, durationMs: 0 });
  const bad = checks.find((x) => !x.ok && (x.failure === 'splat' || x.failure === 'timeout' || x.name === 'rmmod' || x.name === 'unload-old'));
  const report: RunReport = {
    ...verdictOf(checks), runDir, accel: s.accel, kernelVersion: s.kernelVersion, imageKey: s.imageKey,
    startedAt: new Date(started).toISOString(), durationMs: Date.now() - started, checks,
  };
  return { report, needsReboot: bad ? `${bad.name}: ${bad.message ?? bad.failure}` : undefined };
}
