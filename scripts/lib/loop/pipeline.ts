// The pipeline's shared parts, one policy for every command (vm:test,
// --reuse, vm:up, vm:watch, lab:check, bench): the accelerator and the KVM
// memo, the boot with its retries (a port taken meanwhile, a guest kernel
// that crashed in its own boot), resume, where the build happens and its
// kickoff, the kvm-clock check, and the report's assembly.
import { existsSync } from 'node:fs';
import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebugKernel } from '../build/debug-kernel.ts';
import { chooseBuildMode, headersKdir, hostAppCompiler, hostHasCompiler } from '../build/host-kbuild.ts';
import { sandboxUsable } from '../build/sandbox.ts';
import { type Config, splatRuleFiles } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import type { SshSession } from '../guest/ssh.ts';
import { chooseAccel, hostFacts } from '../host/accel.ts';
import { memoFile, readMemo, serialSpeaks, writeMemo } from '../host/kvm-probe.ts';
import type { ImageInfo } from '../image/image.ts';
import { verifyImage } from '../image/image.ts';
import { genericInitrd } from '../image/initrd.ts';
import { hostBuildSuite, type SuiteHostBuild } from '../suite/host-build.ts';
import type { ResolvedSuite } from '../suite/resolve.ts';
import type { runSuite } from '../suite/run.ts';
import { allChecks, type CheckResult, type RunReport, verdictOf } from '../verdict/model.ts';
import { crashedBeforeInit, loadRules } from '../verdict/splat.ts';
import { guestSpec, sshKeys } from '../vm/profile.ts';
import type { VmSpec } from '../vm/qemu-args.ts';
import { type BootHow, qemuVersion, type Resumed, resumable, resumeOrSave } from '../vm/resume.ts';
import { freePort, isPortInUse, SSHD_READY_MARKER, Vm } from '../vm/vm.ts';

export function newRunDir(c: Config, now = new Date()): string {
  return path.join(c.runsDir, `${now.toISOString().replace(/[:.]/g, '-')}-${process.pid}`);
}

/**
 * Boots a VM, or resumes it from a snapshot, and returns it with an SSH
 * session: the one boot policy of vm:test, vm:up (detached) and bench. A port
 * taken meanwhile is tried again; a KVM that hangs guests is probed and
 * remembered; a guest kernel that crashed in its own boot boots once more.
 */
export async function bootVm(
  c: Config,
  img: ImageInfo,
  accel: 'kvm' | 'tcg',
  runDir: string,
  log: (l: string) => void,
  o: { probeKvm?: boolean; byoInitrd?: string; detached?: { stderrFile: string } } = {},
): Promise<{ vm: Vm; session: SshSession; bootMs: number; accel: 'kvm' | 'tcg'; how: BootHow }> {
  if (resumable(c, o)) {
    const t0 = Date.now();
    const r = await resumeGuest(c, img, guestSpec(c, img, accel, await freePort(), runDir), log, o.detached);
    if (r) return { vm: r.vm, session: r.session, bootMs: Date.now() - t0, accel, how: r.how };
  }
  let rebooted = false;
  for (let attempt = 1; ; attempt++) {
    const vm = new Vm(guestSpec(c, img, accel, await freePort(), runDir, o.byoInitrd));
    log(`$ ${vm.commandLine()}`);
    const t0 = Date.now();
    vm.start({ detached: o.detached });
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
      const keys = sshKeys(c, img, Boolean(o.byoInitrd));
      const session = await vm.waitForSsh({
        privateKey: await readFile(keys.clientKey, 'utf8'),
        hostPublicKey: await readFile(keys.hostPub, 'utf8'),
        deadlineMs: c.timeouts.boot * 1000,
        readyMarker: SSHD_READY_MARKER,
      });
      return { vm, session, bootMs: Date.now() - t0, accel, how: 'booted' };
    } catch (e) {
      await vm.kill();
      if (attempt < 3 && isPortInUse(vm.exit?.stderr ?? '')) {
        log('boot: the SSH port was taken meanwhile; trying another');
        continue;
      }
      // The guest kernel crashed in its own boot, before our init: an emulator flake, not the
      // module (not loaded yet). Once more, keeping the crashed console as evidence.
      const crash = !rebooted && crashedBeforeInit(await readFile(vm.spec.serialLog, 'utf8').catch(() => ''), loadRules(splatRuleFiles(c)));
      if (crash) {
        rebooted = true;
        const kept = path.join(path.dirname(vm.spec.serialLog), 'serial-crashed-boot.log');
        await rename(vm.spec.serialLog, kept);
        log(
          `boot: the guest kernel crashed during its own boot, before our init ran (${crash.line.trim()}); booting once more. The crashed boot's console: ${kept}`,
        );
        continue;
      }
      throw (await rejectedDrive(img, vm.exit?.stderr ?? '')) ?? e;
    }
  }
}

/** QEMU refused the image's disk: the image is damaged (exit 4, naming it), not the boot. Undefined when the image verifies. */
async function rejectedDrive(img: ImageInfo, stderr: string): Promise<KmodvmError | undefined> {
  if (!/qcow2|Could not open|Image is corrupt|drive/i.test(stderr)) return undefined;
  const bad = await verifyImage(img.dir);
  if (!bad.length || bad[0].startsWith('integrity.json: missing')) return undefined;
  return new KmodvmError('image', `QEMU refused the image's disk, and the image ${img.dir} is damaged: ${bad.join('; ')}`, {
    evidence: stderr.trim().split('\n').slice(-5).join('\n'),
    hint: `delete it and build again: rm -rf ${img.dir} (or npm run vm:image -- build --force)`,
  });
}

/** --kernel NAME-debug: the debug kernel, built first when it is not cached, then booted as --kernel-image with its own tree and boot parameters. */
export async function withDebugKernel(c: Config, log: (l: string) => void): Promise<Config> {
  if (!c.debugKernel || c.kernelImage) return c;
  const k = await ensureDebugKernel(c, log);
  log(`kernel: the debug kernel ${k.name} (${k.version}, ${k.dir})`);
  return { ...c, kernelImage: k.bzImage, kernelBuildDir: k.buildDir, kernelArgs: [...c.kernelArgs, ...k.kernelArgs] };
}

/** What the report says the kernel was. */
export const kernelLabel = (c: Config, byoVersion: string): string => `${byoVersion} (${c.debugKernel ? `debug kernel ${c.debugKernel}` : '--kernel-image'})`;

/** --kernel-image: the initrd to boot it with, and its version as its build tree says. */
export async function byoKernel(c: Config, img: ImageInfo, runDir: string): Promise<{ initrd: string; version: string }> {
  const uts = await readFile(path.join(c.kernelBuildDir, 'include/generated/utsrelease.h'), 'utf8').catch(() => '');
  const version =
    /UTS_RELEASE "([^"]+)"/.exec(uts)?.[1] ??
    (await readFile(path.join(c.kernelBuildDir, 'include/config/kernel.release'), 'utf8').catch(() => 'unknown')).trim();
  if (c.kernelInitrd) return { initrd: c.kernelInitrd, version };
  const out = path.join(runDir, 'initrd-generic.cpio');
  await genericInitrd({
    leanInitrd: img.initrdLean,
    initScript: await readFile(path.join(c.root, 'qemu/initrd-init.sh'), 'utf8'),
    work: path.join(runDir, 'initrd-generic'),
    out,
  });
  return { initrd: out, version };
}

/** accel auto, with what this host taught us before: a KVM that hangs guests is not tried again. */
export async function pickAccel(c: Config, facts = hostFacts()): Promise<{ accel: 'kvm' | 'tcg'; note?: string; probeKvm: boolean }> {
  const chosen = chooseAccel(c.accel, facts);
  if (c.accel !== 'auto' || chosen.accel !== 'kvm') return { ...chosen, probeKvm: false };
  const memo = await readMemo(c);
  if (memo && !memo.kvmWorks)
    return { accel: 'tcg', note: `accel: TCG, because KVM hung a guest on this host before (${memoFile(c)}; delete it to probe again)`, probeKvm: false };
  return { accel: 'kvm', probeKvm: !memo };
}

/** The host build of a suite, started while the guest comes up; undefined when the build is the guest's. */
export function startHostBuild(
  c: Config,
  img: ImageInfo,
  rs: ResolvedSuite,
  tree: string,
  o: { kdir: string; mode: 'host' | 'guest'; niceness?: number },
): Promise<SuiteHostBuild> | undefined {
  if (o.mode !== 'host') return undefined;
  const p = hostBuildSuite({
    suite: rs.suite,
    files: rs.files,
    tree,
    kdir: o.kdir,
    cc: hostAppCompiler(img.manifest.kernelGccMajor),
    timeoutMs: c.timeouts.build * 1000,
    replay: c.replay,
    niceness: o.niceness,
  });
  p.catch(() => undefined);
  return p;
}

/** Where the module is built for this image: the host when it has the kernel's compiler and the image's headers. */
export function buildModeFor(c: Config, img: ImageInfo, byo: boolean): { mode: 'host' | 'guest'; why: string; kdir: string } {
  const kdir = byo ? c.kernelBuildDir : headersKdir(img.dir, img.manifest.kernelVersion);
  const sandbox = sandboxUsable();
  if (byo && !sandbox.ok)
    throw new KmodvmError('setup', `--kernel-image builds the modules on the host, in a sandbox, and ${sandbox.why}`, {
      hint: 'install bubblewrap (apt-get install bubblewrap) on a host that allows user namespaces',
    });
  if (byo) return { mode: 'host', why: `--kernel-build-dir ${c.kernelBuildDir}`, kdir };
  return {
    ...chooseBuildMode(c.build, {
      gccMajor: img.manifest.kernelGccMajor,
      hostHasCompiler: hostHasCompiler(img.manifest.kernelGccMajor),
      headers: existsSync(kdir),
      sandbox,
    }),
    kdir,
  };
}

/** The report of a run: its own checks before and after the suite's tests, and the verdict over all of them. */
export function assemble(
  report: RunReport,
  head: CheckResult[],
  r: Awaited<ReturnType<typeof runSuite>> | undefined,
  tail: CheckResult[],
  started: number,
): RunReport {
  report.checks = [...head, ...(r?.before ?? []), ...(r?.after ?? []), ...tail];
  report.testsAt = head.length + (r?.before.length ?? 0);
  report.tests = r?.tests;
  report.captures = r?.tests.find((t) => t.captures)?.captures;
  return Object.assign(report, verdictOf(allChecks(report)), { durationMs: Date.now() - started });
}

/** As virtme-ng does: a guest that really runs under KVM uses kvm-clock. */
export async function kvmClockCheck(session: SshSession): Promise<CheckResult> {
  const cs = (await session.exec(['cat', '/sys/devices/system/clocksource/clocksource0/current_clocksource'], { timeoutMs: 10_000 })).stdout.trim();
  return cs === 'kvm-clock'
    ? { name: 'kvm', ok: true, durationMs: 0, message: 'clocksource kvm-clock' }
    : {
        name: 'kvm',
        ok: false,
        failure: 'boot',
        durationMs: 0,
        message: `--accel kvm, but the guest clocksource is ${cs || 'unknown'}, not kvm-clock`,
        evidence: 'KVM is not really in use; check /dev/kvm permissions and the udev rule',
      };
}

/** resumeOrSave for a run or an instance: the image's keys, the boot timeout, and a guest kernel crash before our init retried as a boot. */
export async function resumeGuest(
  c: Config,
  img: ImageInfo,
  spec: VmSpec,
  log: (l: string) => void,
  detached?: { stderrFile: string },
): Promise<Resumed | undefined> {
  return resumeOrSave({
    cacheDir: c.cacheDir,
    spec,
    imageKey: img.key,
    qemuVersion: await qemuVersion(),
    privateKey: await readFile(img.clientKey, 'utf8'),
    hostPublicKey: await readFile(img.hostPub, 'utf8'),
    deadlineMs: c.timeouts.boot * 1000,
    log,
    retryBoot: (serial) => Boolean(crashedBeforeInit(serial, loadRules(splatRuleFiles(c)))),
    detached,
  });
}
