// vm:test as a function: image → boot → upload → build → load → app →
// unload → verdict. Composes the modules; owns no global state.
import { existsSync } from 'node:fs';
import { mkdir, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { chooseAccel, hostFacts } from './accel.ts';
import { resolveIn, splatRuleFiles, type Config } from './config.ts';
import { KmodvmError, type FailureClass } from './errors.ts';
import { ensureImage, findImage, type ImageInfo } from './image.ts';
import { guestRecordsDir } from './guest-kbuild.ts';
import { chooseBuildMode, headersKdir, hostAppCompiler, hostBuildApp, hostBuildModule, hostHasCompiler, type HostBuild } from './hostbuild.ts';
import { preflight } from './preflight.ts';
import { verdictOf, type Check, type RunReport } from './report.ts';
import { crashedBeforeInit, findSplats, formatSplat, loadRules } from './splat.ts';
import type { SshSession } from './ssh.ts';
import { testPlan } from './steps.ts';
import { requireRunning } from './instance.ts';
import { testOnInstance } from './instance-run.ts';
import { APP, MODULE, testOnSession } from './session-test.ts';
// Re-exported for the e2e tests and vm:watch, which upload the same way.
export { isBuildProduct } from './session-test.ts';
import { parseTranscript } from './transcript.ts';
import { guestSpec } from './profile.ts';
import { genericInitrd } from './initrd.ts';
import { memoFile, readMemo, serialSpeaks, writeMemo } from './kvm-probe.ts';
import { SSHD_READY_MARKER, freePort, isPortInUse, Vm } from './vm.ts';
import { qemuVersion, resumable, resumeGuest, snapshotKeyHere, type BootHow } from './resume.ts';
import { findSnapshot, resumingSpec, savingSpec, snapshotsDir } from './snapshot.ts';
import type { VmSpec } from './qemu-args.ts';


export interface RunOptions { log: (l: string) => void }


export function newRunDir(c: Config, now = new Date()): string {
  return path.join(c.runsDir, `${now.toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
}

/** Boots a VM, or resumes it from a snapshot, and returns it with an SSH session; retries once if the port was taken meanwhile. */
export async function bootVm(c: Config, img: ImageInfo, accel: 'kvm' | 'tcg', runDir: string, log: (l: string) => void, o: { probeKvm?: boolean; byoInitrd?: string } = {}): Promise<{ vm: Vm; session: SshSession; bootMs: number; accel: 'kvm' | 'tcg'; how: BootHow }> {
  if (resumable(c, o)) {
    const t0 = Date.now();
    const r = await resumeGuest(c, img, guestSpec(c, img, accel, await freePort(), runDir), log);
    if (r) return { vm: r.vm, session: r.session, bootMs: Date.now() - t0, accel, how: r.how };
  }
  let rebooted = false;
  for (let attempt = 1; ; attempt++) {
    const vm = new Vm(guestSpec(c, img, accel, await freePort(), runDir, o.byoInitrd));
    log(`$ ${vm.commandLine()}`);
    const t0 = Date.now();
    vm.start();
    try {
      if (accel === 'kvm' && o.probeKvm) {
        // A KVM guest that prints nothing at all in 5 s is a host where KVM hangs.
        const speaks = await serialSpeaks(vm.spec.serialLog, 5000, () => vm.alive);
        await writeMemo(c, speaks || !vm.alive);
        if (!speaks && vm.alive) {
          await vm.kill();
          log(`accel: the KVM guest printed nothing in 5 s; this host's KVM hangs guests, so TCG it is (remembered in ${memoFile(c)})`);
          accel = 'tcg';
          continue;
        }
      }
      const session = await vm.waitForSsh({ privateKey: await readFile(img.clientKey, 'utf8'), hostPublicKey: await readFile(img.hostPub, 'utf8'), deadlineMs: c.timeouts.boot * 1000, readyMarker: SSHD_READY_MARKER });
      return { vm, session, bootMs: Date.now() - t0, accel, how: 'booted' };
    } catch (e) {
      await vm.kill();
      if (attempt < 3 && isPortInUse(vm.exit?.stderr ?? '')) { log('boot: the SSH port was taken meanwhile; trying another'); continue; }
      // The guest kernel crashed in its own boot, before our init: an emulator flake, not the
      // module (not loaded yet). Once more, keeping the crashed console as evidence.
      const crash = !rebooted && crashedBeforeInit(await readFile(vm.spec.serialLog, 'utf8').catch(() => ''), loadRules(splatRuleFiles(c)));
      if (crash) {
        rebooted = true;
        const kept = path.join(path.dirname(vm.spec.serialLog), 'serial-crashed-boot.log');
        await rename(vm.spec.serialLog, kept);
        log(`boot: the guest kernel crashed during its own boot, before our init ran (${crash.line.trim()}); booting once more. The crashed boot's console: ${kept}`);
        continue;
      }
      throw e;
    }
  }
}

/** --kernel-image: the initrd to boot it with, and its version as its build tree says. */
async function byoKernel(c: Config, img: ImageInfo, runDir: string): Promise<{ initrd: string; version: string }> {
  const uts = await readFile(path.join(c.kernelBuildDir, 'include/generated/utsrelease.h'), 'utf8').catch(() => '');
  const version = /UTS_RELEASE "([^"]+)"/.exec(uts)?.[1] ?? (await readFile(path.join(c.kernelBuildDir, 'include/config/kernel.release'), 'utf8').catch(() => 'unknown')).trim();
  if (c.kernelInitrd) return { initrd: c.kernelInitrd, version };
  const out = path.join(runDir, 'initrd-generic.cpio');
  await genericInitrd({ leanInitrd: img.initrdLean, initScript: await readFile(path.join(c.root, 'qemu/initrd-init.sh'), 'utf8'), work: path.join(runDir, 'initrd-generic'), out });
  return { initrd: out, version };
}

/** accel auto, with what this host taught us before: a KVM that hangs guests is not tried again. */
export async function pickAccel(c: Config, facts = hostFacts()): Promise<{ accel: 'kvm' | 'tcg'; note?: string; probeKvm: boolean }> {
  const chosen = chooseAccel(c.accel, facts);
  if (c.accel !== 'auto' || chosen.accel !== 'kvm') return { ...chosen, probeKvm: false };
  const memo = await readMemo(c);
  if (memo && !memo.kvmWorks) return { accel: 'tcg', note: `accel: TCG, because KVM hung a guest on this host before (${memoFile(c)}; delete it to probe again)`, probeKvm: false };
  return { accel: 'kvm', probeKvm: !memo };
}

export async function runVmTest(c: Config, o: RunOptions): Promise<RunReport> {
  const started = Date.now();
  const log = o.log;
  // Bad input fails before anything starts.
  const transcriptFile = resolveIn(c, c.transcript);
  const transcript = parseTranscript(await readFile(transcriptFile, 'utf8').catch(() => {
    throw new KmodvmError('usage', `cannot read the transcript ${transcriptFile}`, { hint: 'pass --transcript FILE' });
  }), c.transcript);
  const rules = loadRules(splatRuleFiles(c));
  const moduleDir = resolveIn(c, c.moduleDir);
  const appDir = resolveIn(c, c.appDir);
  const { accel, note, probeKvm } = await pickAccel(c);

  if (c.dryRun) {
    const img = await findImage(c);
    const shown = img ?? { vmlinux: '<cache>/vmlinux', vmlinuz: '<cache>/vmlinuz', initrdLean: '<cache>/initrd-lean.cpio', initrdStock: '<cache>/initrd.img', rootfs: '<cache>/rootfs.qcow2', cmdline: [] } as unknown as ImageInfo;
    const spec = guestSpec(c, shown, accel, 0, '<run-dir>');
    log(`plan: ${img ? `image ${img.dir} (cached)` : 'build the image first (not cached)'}; accel ${accel}${note ? ` (${note})` : ''}`);
    log(`plan: boot, upload ${moduleDir} and ${appDir}, then: ${testPlan({ moduleName: 'netlink_simple_intf', appName: 'netlink_userapp', timeouts: c.timeouts, buildModuleInGuest: c.build !== 'host' }).map((s) => s.name).join(', ')}, power off`);
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
    return { verdict: 'pass', exitCode: 0, runDir: '', accel, startedAt: new Date(started).toISOString(), durationMs: 0, checks: [] };
  }

  if (c.reuse) {
    const state = await requireRunning(c, c.reuse, log);
    const runDir = newRunDir(c);
    log(`run directory: ${runDir} (on instance ${c.reuse})`);
    const r = await testOnInstance(c, state, runDir, log);
    if (r.needsReboot) log(`instance ${c.reuse}: the kernel can no longer be trusted (${r.needsReboot}); restart it before the next run`);
    return r.report;
  }

  await preflight(log);
  const img = await ensureImage(c, log);
  const runDir = newRunDir(c);
  await mkdir(path.join(runDir, 'steps'), { recursive: true });
  if (note) log(note);
  log(`run directory: ${runDir}`);
  // Bring your own kernel: built against its own tree on the host (where that tree is), booted with its initrd.
  const byo = c.kernelImage ? await byoKernel(c, img, runDir) : undefined;
  const kdir = byo ? c.kernelBuildDir : headersKdir(img.dir, img.manifest.kernelVersion);
  const build = byo ? { mode: 'host' as const, why: `--kernel-build-dir ${c.kernelBuildDir}` } : chooseBuildMode(c.build, { gccMajor: img.manifest.kernelGccMajor, hostHasCompiler: hostHasCompiler(img.manifest.kernelGccMajor), headers: existsSync(kdir) });
  log(`build: module built in the ${build.mode} (${build.why})`);
  // A host build runs while the guest boots.
  const hostBuild: Promise<HostBuild> | undefined = build.mode === 'host'
    ? hostBuildModule({ moduleDir, outDir: path.join(runDir, 'build', 'kernel-module'), kdir, moduleName: MODULE, timeoutMs: c.timeouts.build * 1000, replay: c.replay })
    : undefined;
  hostBuild?.catch(() => undefined);
  const cc = hostAppCompiler(img.manifest.kernelGccMajor);
  const hostApp: Promise<HostBuild> | undefined = build.mode === 'host' && cc
    ? hostBuildApp({ appDir, outDir: path.join(runDir, 'build', 'userapp'), appName: APP, cc, timeoutMs: c.timeouts.build * 1000 })
    : undefined;
  hostApp?.catch(() => undefined);
  const checks: Check[] = [];
  const report: RunReport = {
    verdict: 'fail', exitCode: 70, runDir, accel, kernelVersion: byo ? `${byo.version} (--kernel-image)` : img.manifest.kernelVersion, imageKey: img.key,
    qemuVersion: await qemuVersion(), startedAt: new Date(started).toISOString(), durationMs: 0, checks,
  };
  const fail = (name: string, failure: FailureClass, message: string, evidence?: string, durationMs = 0): void => {
    checks.push({ name, ok: false, failure, message, evidence, durationMs });
  };

  let vm: Vm | undefined;
  let session: SshSession | undefined;
  try {
    try {
      const b = await bootVm(c, img, accel, runDir, log, { probeKvm, byoInitrd: byo?.initrd });
      vm = b.vm; session = b.session; report.bootToSshMs = b.bootMs; report.accel = b.accel; report.bootHow = b.how;
      checks.push({ name: 'boot', ok: true, durationMs: b.bootMs, message: `SSH ready on 127.0.0.1:${vm.spec.sshPort}${b.how === 'booted' ? '' : ` (${b.how} from a snapshot)`}` });
      if (c.accel === 'kvm') {
        // As virtme-ng does: a guest that really runs under KVM uses kvm-clock.
        const cs = (await session.exec(['cat', '/sys/devices/system/clocksource/clocksource0/current_clocksource'], { timeoutMs: 10_000 })).stdout.trim();
        checks.push(cs === 'kvm-clock'
          ? { name: 'kvm', ok: true, durationMs: 0, message: 'clocksource kvm-clock' }
          : { name: 'kvm', ok: false, failure: 'boot', durationMs: 0, message: `--accel kvm, but the guest clocksource is ${cs || 'unknown'}, not kvm-clock`, evidence: 'KVM is not really in use; check /dev/kvm permissions and the udev rule' });
        if (cs !== 'kvm-clock') return await finish();
      }
    } catch (e) {
      if (!(e instanceof KmodvmError)) throw e;
      fail('boot', e.failure, e.message, [e.evidence, e.hint && `next: ${e.hint}`].filter(Boolean).join('\n'), Date.now() - started);
      return finish();
    }
    const r = await testOnSession({
      c, session, runDir, moduleDir, appDir, transcript, transcriptFile, hostBuild, guestRecords: { dir: guestRecordsDir(c.cacheDir, img.key), replay: c.replay }, hostApp, guestFallback: report.accel === 'kvm' && !byo, log,
      serialTail: () => vm!.serialTail(15),
    });
    checks.push(...r.checks);
    report.captures = r.captures;
    const finalDmesg = r.finalDmesg;
    const t1 = Date.now();
    await session.exec(['sh', '-c', 'echo o > /proc/sysrq-trigger'], { timeoutMs: 5000 }).catch(() => undefined);
    session.close(); session = undefined;
    await Promise.race([vm.waitExit(), new Promise((r) => setTimeout(r, 5000))]);
    await vm.kill();
    checks.push({ name: 'poweroff', ok: true, durationMs: Date.now() - t1 });
    await splatCheck(finalDmesg);
    return finish();
  } finally {
    session?.close();
    await vm?.kill();
  }

  async function splatCheck(dmesgText: string): Promise<void> {
    const serial = await readFile(path.join(runDir, 'serial.log'), 'utf8').catch(() => '');
    const splats = [...findSplats(dmesgText, rules, 'dmesg'), ...findSplats(serial, rules, 'serial.log')];
    checks.push(splats.length
      ? { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: `${splats[0].id}: ${splats[0].line}`, evidence: formatSplat(splats[0]) }
      : { name: 'no-splat', ok: true, durationMs: 0 });
  }

  async function finish(): Promise<RunReport> {
    if (!checks.some((x) => x.name === 'no-splat')) {
      const serial = await readFile(path.join(runDir, 'serial.log'), 'utf8').catch(() => '');
      const s = findSplats(serial, rules, 'serial.log');
      if (s.length) checks.push({ name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, message: `${s[0].id}: ${s[0].line}`, evidence: formatSplat(s[0]) });
    }
    Object.assign(report, verdictOf(checks), { durationMs: Date.now() - started });
    return report;
  }
}
