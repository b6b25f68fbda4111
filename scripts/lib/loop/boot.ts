import { readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { type Config, splatRuleFiles } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import type { SshSession } from '../guest/ssh.ts';
import { memoFile, serialSpeaks, writeMemo } from '../host/kvm-probe.ts';
import type { ImageInfo } from '../image/image.ts';
import { verifyImage } from '../image/image.ts';
import type { CheckResult } from '../verdict/model.ts';
import { crashedBeforeInit, loadRules } from '../verdict/splat.ts';
import { guestSpec, sshKeys } from '../vm/profile.ts';
import type { VmSpec } from '../vm/qemu-args.ts';
import { type BootHow, qemuVersion, type Resumed, resumable, resumeOrSave } from '../vm/resume.ts';
import { freePort, isPortInUse, SSHD_READY_MARKER, Vm } from '../vm/vm.ts';

/** What a boot reads of the options. */
type BootConfig = Pick<
  Config,
  | 'cacheDir'
  | 'cpus'
  | 'debugKernel'
  | 'devices'
  | 'guestNet'
  | 'kernelArgs'
  | 'kernelImage'
  | 'memoryMiB'
  | 'profile'
  | 'resume'
  | 'root'
  | 'splatRules'
  | 'timeouts'
>;

/**
 * Boots a VM, or resumes it from a snapshot, and returns it with an SSH
 * session: the one boot policy of vm:test, vm:up (detached) and bench. A port
 * taken meanwhile is tried again; a KVM that hangs guests is probed and
 * remembered; a guest kernel that crashed in its own boot boots once more.
 */
export async function bootVm(
  c: BootConfig,
  img: ImageInfo,
  accel: 'kvm' | 'tcg',
  runDir: string,
  log: (l: string) => void,
  o: { probeKvm?: boolean; byoInitrd?: string; detached?: { stderrFile: string } } = {},
): Promise<{ vm: Vm; session: SshSession; bootMs: number; accel: 'kvm' | 'tcg'; how: BootHow }> {
  if (resumable(c, o)) {
    const t0 = Date.now();
    const r = await resumeGuest(c, img, guestSpec(c, img, accel, await freePort(), runDir, o.byoInitrd), log, o.detached, Boolean(o.byoInitrd));
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
    hint: `delete it and build again: rm -rf ${img.dir} (or ${kmodvmCommand('image', 'build --force')})`,
  });
}

/** resumeOrSave for a run or an instance: the image's keys, the boot timeout, and a guest kernel crash before our init retried as a boot. */
export async function resumeGuest(
  c: Pick<Config, 'cacheDir' | 'root' | 'splatRules' | 'timeouts'>,
  img: ImageInfo,
  spec: VmSpec,
  log: (l: string) => void,
  detached?: { stderrFile: string },
  byo = false,
): Promise<Resumed | undefined> {
  // The debug kernel boots the generic initrd, whose sshd has the root file system's keys.
  const keys = sshKeys({ profile: 'lean' }, img, byo);
  return resumeOrSave({
    cacheDir: c.cacheDir,
    spec,
    imageKey: img.key,
    qemuVersion: await qemuVersion(),
    privateKey: await readFile(keys.clientKey, 'utf8'),
    hostPublicKey: await readFile(keys.hostPub, 'utf8'),
    deadlineMs: c.timeouts.boot * 1000,
    log,
    retryBoot: (serial) => Boolean(crashedBeforeInit(serial, loadRules(splatRuleFiles(c)))),
    detached,
  });
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
