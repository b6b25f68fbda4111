// --keep-on-fail[=NAME] (issue 26.2): the guest of the first failed test is
// not powered off but kept as instance NAME, so `kmodvm ssh/logs/gdb/down
// --name NAME` and `status` reach it. It was started detached (so it can
// outlive kmodvm); its files stay in the run directory, and the instance's
// own directory links to its sockets.
import { symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { mkdirPrivate } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import type { ImageInfo } from '../image/image.ts';
import type { CheckResult } from '../verdict/model.ts';
import { type InstanceState, instanceDir, lookup, recordInstance } from '../vm/instance.ts';
import { sshKeys } from '../vm/profile.ts';
import { eventsSocketOf, gdbSocketOf } from '../vm/qemu-args.ts';
import type { Vm } from '../vm/vm.ts';

/** Bad input before anything boots: the name is taken by an instance that is up. */
export async function checkKeepName(c: Pick<Config, 'cacheDir' | 'keepOnFail' | 'reuse'>): Promise<void> {
  if (!c.keepOnFail) return;
  if (c.reuse)
    throw new KmodvmError('usage', `--keep-on-fail with --reuse ${c.reuse}: that instance stays up anyway`, {
      hint: 'drop --keep-on-fail (add --until-fail to stop at the first failure)',
    });
  if ((await lookup(c, c.keepOnFail)).alive)
    throw new KmodvmError('usage', `--keep-on-fail: an instance named ${c.keepOnFail} is up already`, {
      hint: `end it (kmodvm down --name ${c.keepOnFail}) or give another name: --keep-on-fail=NAME`,
    });
}

/** What the user runs next, for an instance of that name. */
export const keptCommands = (name: string): string[] => [
  `kmodvm ssh --name ${name}      # a root shell on it`,
  `kmodvm logs --name ${name}     # its serial console`,
  `kmodvm gdb --name ${name}      # gdb, with the loaded modules' symbols`,
  `kmodvm down --name ${name}     # end it`,
];

/** The failed guest, released from this run and recorded as an instance. */
export async function keepAsInstance(
  c: Pick<Config, 'cacheDir' | 'keepOnFail' | 'profile'>,
  o: { vm: Vm; img: ImageInfo; byo: boolean; accel: string; kernelVersion: string; failed: string },
): Promise<CheckResult> {
  const name = c.keepOnFail;
  const dir = instanceDir(c, name);
  await mkdirPrivate(dir);
  const qmp = o.vm.spec.qmpSocket;
  for (const [link, to] of [
    ['qmp.sock', qmp],
    ['gdb.sock', gdbSocketOf(qmp)],
    ['events.sock', eventsSocketOf(qmp)],
  ])
    await symlink(to, path.join(dir, link)).catch(() => undefined);
  const state: InstanceState = {
    name,
    pid: o.vm.pid!,
    port: o.vm.spec.sshPort,
    accel: o.accel,
    imageKey: o.img.key,
    imageDir: o.img.dir,
    kernelVersion: o.kernelVersion,
    startedAt: new Date().toISOString(),
    dir,
    serialLog: o.vm.spec.serialLog,
    ...sshKeys(c, o.img, o.byo),
  };
  await recordInstance(state);
  o.vm.release();
  return {
    name: 'keep-on-fail',
    ok: true,
    durationMs: 0,
    message: `the guest of ${o.failed} is kept up as instance ${name} (pid ${state.pid})`,
    evidence: keptCommands(name).join('\n'),
  };
}
