import t from 'tap';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { buildQemuArgs, type VmSpec } from '../../scripts/lib/qemu-args.ts';
import { findSnapshot, forkable, removeSnapshot, resumable, resumedCommand, resumeOrSave, resumingSpec, savingSpec, snapshotKey, snapshotsDir, UNUSABLE } from '../../scripts/lib/snapshot.ts';

const spec: VmSpec = Object.freeze({
  accel: 'tcg', cpus: 2, memoryMiB: 1024, kernel: '/img/vmlinux', initrd: '/img/initrd-lean.cpio', cmdline: Object.freeze(['console=ttyS0', 'kmodvm.sshd=initrd']),
  rootfs: '/img/rootfs.qcow2', sshPort: 40022, serialLog: '/run/serial.log', qmpSocket: '/run/qmp.sock', bios: '/usr/share/qemu/qboot.rom',
}) as VmSpec;
const ids = { imageKey: 'abc', qemuVersion: 'QEMU emulator version 7.2.22' };

t.test('the key follows the machine, not the run: port, console, QMP socket and firmware leave it alone', async (t) => {
  const k = snapshotKey(spec, ids);
  t.match(k, /^[0-9a-f]{16}$/);
  t.equal(snapshotKey({ ...spec, sshPort: 1, serialLog: '/x/serial.log', qmpSocket: '/x/q.sock' }, ids), k);
  t.equal(snapshotKey({ ...spec, bios: undefined }, ids), k, 'a saved guest never runs its firmware again');
  for (const [what, other] of [
    ['image', snapshotKey(spec, { ...ids, imageKey: 'abd' })],
    ['QEMU', snapshotKey(spec, { ...ids, qemuVersion: 'QEMU emulator version 8.2.2' })],
    ['cpus', snapshotKey({ ...spec, cpus: 1 }, ids)],
    ['memory', snapshotKey({ ...spec, memoryMiB: 2048 }, ids)],
    ['cmdline', snapshotKey({ ...spec, cmdline: [...spec.cmdline, 'loglevel=7'] }, ids)],
    ['accel', snapshotKey({ ...spec, accel: 'kvm' }, ids)],
  ] as const) t.not(other, k, `${what} changes it`);
  t.equal(snapshotKey(spec, { ...ids, hostCpu: 'AMD EPYC' }), k, 'the host CPU only counts under KVM (-cpu host)');
  t.not(snapshotKey({ ...spec, accel: 'kvm' }, { ...ids, hostCpu: 'AMD EPYC' }), snapshotKey({ ...spec, accel: 'kvm' }, { ...ids, hostCpu: 'Intel Xeon' }));
});

t.test('saving: SeaBIOS and vmgenid, the disk writes kept in the snapshot overlay, the console beside the run\'s', async (t) => {
  const s = savingSpec(spec, '/cache/snapshots/k.tmp-1', '/tmp/kmodvm-snap-x');
  t.equal(s.bios, undefined);
  t.equal(s.forkable, true);
  t.equal(s.rootfs, '/cache/snapshots/k.tmp-1/disk.qcow2');
  t.equal(s.keepDiskWrites, true);
  t.equal(s.serialLog, '/run/serial-boot.log');
  t.equal(s.qmpSocket, '/tmp/kmodvm-snap-x/qmp.sock');
  const a = buildQemuArgs(s);
  t.notOk(a.includes('-snapshot'));
  t.notOk(a.includes('-incoming'));
  t.equal(spec.bios, '/usr/share/qemu/qboot.rom', 'the run spec is untouched');
});

t.test('resuming: the saved state on fd 3, the saved disk under a throwaway layer, the run\'s own console and port', async (t) => {
  const r = resumingSpec(spec, '/cache/snapshots/k');
  t.equal(r.incoming, '/cache/snapshots/k/state');
  t.equal(r.incomingFd, 3);
  t.equal(r.rootfs, '/cache/snapshots/k/disk.qcow2');
  t.notOk(r.keepDiskWrites);
  const a = buildQemuArgs(r);
  t.ok(a.includes('-snapshot'), 'the saved disk stays as it was saved');
  t.same(a.slice(a.indexOf('-incoming'), a.indexOf('-incoming') + 2), ['-incoming', 'fd:3']);
  t.ok(a.some((x) => x.includes("hostfwd=tcp:127.0.0.1:40022-:22")), "the run's own port");
  t.same(a.slice(a.indexOf('-serial'), a.indexOf('-serial') + 2), ['-serial', 'file:/run/serial.log']);
  t.same(forkable(spec), { ...spec, bios: undefined, forkable: true });
});

t.test('only the lean profile\'s own guest resumes', async (t) => {
  t.equal(resumable({ resume: true, profile: 'lean' }, {}), true);
  t.equal(resumable({ resume: false, profile: 'lean' }, {}), false, '--no-resume');
  t.equal(resumable({ resume: true, profile: 'systemd' }, {}), false, 'the classic boot is measured as a boot');
  t.equal(resumable({ resume: true, profile: 'lean' }, { byoInitrd: '/k/initrd' }), false, 'your own kernel');
  t.equal(resumable({ resume: true, profile: 'lean' }, { probeKvm: true }), false, 'a KVM probe must see the guest boot');
});

t.test('a snapshot counts only when whole (meta.json is written last, then the directory renamed); removal renames first', async (t) => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-snaptest-'));
  t.equal(await findSnapshot(cache, 'k1'), undefined, 'none yet');
  const dir = path.join(snapshotsDir(cache), 'k1');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'state'), 'x');
  t.equal(await findSnapshot(cache, 'k1'), undefined, 'no meta.json: not a snapshot');
  await writeFile(path.join(dir, 'meta.json'), '{}');
  t.equal(await findSnapshot(cache, 'k1'), dir);
  await removeSnapshot(dir);
  t.notOk(existsSync(dir));
  t.equal(await findSnapshot(cache, 'k1'), undefined);
});

t.test('the resumed guest\'s clock command: one date, the marker with the uptime, quoted for dash', async (t) => {
  const cmd = resumedCommand(new Date(Date.UTC(2026, 10, 29, 11, 30, 35, 123)));
  t.match(cmd, /^date -u -s '?@1795951835\.123'? >\/dev\/null && /);
  // dash (the guest's login shell) runs it; date and the console swapped for harmless stand-ins
  const { execa } = await import('execa');
  const uptime = path.join(await mkdtemp(path.join(os.tmpdir(), 'kmodvm-uptime-')), 'uptime');
  await writeFile(uptime, '47.25 80.00\n');
  const consoleFile = path.join(path.dirname(uptime), 'console');
  await execa('dash', ['-c', cmd.replace('date -u -s', 'echo').replace('/proc/uptime', uptime).replace('/dev/console', consoleFile)]);
  t.equal(await readFile(consoleFile, 'utf8'), 'kmodvm-init: resumed from a snapshot at 47.25s; clock set to 2026-11-29T11:30:35.123Z\n');
});

t.test('a guest that could not be saved or resumed on this host before is booted, not tried again, and says how to retry', async (t) => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-snaptest-'));
  const key = snapshotKey(spec, ids);
  const marker = path.join(snapshotsDir(cache), key, UNUSABLE);
  await mkdir(path.dirname(marker), { recursive: true });
  await writeFile(marker, JSON.stringify({ key, imageKey: ids.imageKey, reason: 'resuming: the guest did not resume (QEMU exited: load of migration failed)' }));
  const lines: string[] = [];
  // No QEMU is started: the spec's kernel does not even exist.
  const r = await resumeOrSave({ cacheDir: cache, spec, ...ids, privateKey: '', hostPublicKey: '', deadlineMs: 1000, log: (l) => lines.push(l), retryBoot: () => false });
  t.equal(r, undefined);
  t.same(lines, [`snapshot: saving or resuming this guest failed on this host before (resuming: the guest did not resume (QEMU exited: load of migration failed)); booting. Delete ${marker} to try again`]);
  t.equal(await findSnapshot(cache, key), undefined, 'a marker is not a snapshot');
});
