import { existsSync, truncateSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { recordIntegrity } from '../../../scripts/lib/core/integrity.ts';
import { buildQemuArgs } from '../../../scripts/lib/vm/qemu-args.ts';
import { findSnapshot, forkable, removeSnapshot, resumingSpec, savingSpec, snapshotKey, snapshotsDir } from '../../../scripts/lib/vm/snapshot.ts';
import { ids, spec } from '../../helpers/snapshot-spec.ts';

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
  ] as const)
    t.not(other, k, `${what} changes it`);
  t.equal(snapshotKey(spec, { ...ids, hostCpu: 'AMD EPYC' }), k, 'the host CPU only counts under KVM (-cpu host)');
  t.not(snapshotKey({ ...spec, accel: 'kvm' }, { ...ids, hostCpu: 'AMD EPYC' }), snapshotKey({ ...spec, accel: 'kvm' }, { ...ids, hostCpu: 'Intel Xeon' }));
});

t.test('the key is the whole guest spec less an explicit list: a field added to the guest record changes it (#23)', async (t) => {
  const { NOT_IN_KEY } = await import('../../../scripts/lib/vm/snapshot.ts');
  const k = snapshotKey(spec, ids);
  t.not(snapshotKey({ ...spec, guestNet: true }, ids), k, 'guestNet, which the hand-made list had left out');
  const cold = (dir: string): typeof spec => ({
    ...spec,
    devices: { args: ['-blockdev', `driver=file,filename=${dir}/device-u.img`], key: ['usb-storage,id=u'] },
  });
  t.not(snapshotKey(cold('/run/a'), ids), k, 'the cold devices (#25)');
  t.equal(snapshotKey(cold('/run/a'), ids), snapshotKey(cold('/run/b'), ids), 'by their specs, not by the run directory their arguments name');
  t.equal(snapshotKey({ ...spec, devices: { args: [], key: [] } }, ids), k, 'no devices: the plain guest');
  for (const f of NOT_IN_KEY)
    t.equal(
      snapshotKey({ ...spec, [f]: f === 'incomingFd' ? 9 : f === 'keepDiskWrites' ? true : `/other/${f}` } as typeof spec, ids),
      k,
      `${f} leaves it alone`,
    );
});

t.test("saving: SeaBIOS and vmgenid, the disk writes kept in the snapshot overlay, the console beside the run's", async (t) => {
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

t.test("resuming: the saved state on fd 3, the saved disk under a throwaway layer, the run's own console and port", async (t) => {
  const r = resumingSpec(spec, '/cache/snapshots/k');
  t.equal(r.incoming, '/cache/snapshots/k/state');
  t.equal(r.incomingFd, 3);
  t.equal(r.rootfs, '/cache/snapshots/k/disk.qcow2');
  t.notOk(r.keepDiskWrites);
  const a = buildQemuArgs(r);
  t.ok(a.includes('-snapshot'), 'the saved disk stays as it was saved');
  t.same(a.slice(a.indexOf('-incoming'), a.indexOf('-incoming') + 2), ['-incoming', 'fd:3']);
  t.ok(
    a.some((x) => x.includes('hostfwd=tcp:127.0.0.1:40022-:22')),
    "the run's own port",
  );
  t.same(a.slice(a.indexOf('-serial'), a.indexOf('-serial') + 2), ['-serial', 'file:/run/serial.log']);
  t.same(forkable(spec), { ...spec, bios: undefined, forkable: true });
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

t.test('a saved guest whose state changed since the save (a truncated state file) is removed, not resumed', async (t) => {
  const cache = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-snapint-'));
  const dir = path.join(snapshotsDir(cache), 'abcdef0123456789');
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'state'), Buffer.alloc(1 << 16, 7));
  await writeFile(path.join(dir, 'disk.qcow2'), 'disk');
  await writeFile(path.join(dir, 'meta.json'), '{}');
  await recordIntegrity(dir, ['state', 'disk.qcow2', 'meta.json']);
  t.equal(await findSnapshot(cache, 'abcdef0123456789'), dir, 'as saved');
  truncateSync(path.join(dir, 'state'), 4096);
  const logs: string[] = [];
  t.equal(await findSnapshot(cache, 'abcdef0123456789', (l) => logs.push(l)), undefined);
  t.match(logs.join('\n'), /changed since it was saved \(state: 4096 bytes, 65536 when it was written\); removing it/);
  t.equal(existsSync(dir), false);
});

t.test('one saved guest per guest spec (#29.18): test and test --memcheck each keep theirs; the least recently used beyond four per image go', async (t) => {
  const { evictions, SNAPSHOTS_PER_IMAGE, USED } = await import('../../../scripts/lib/vm/snapshot.ts');
  t.equal(SNAPSHOTS_PER_IMAGE, 4);
  const plain = { dir: '/s/plain', imageKey: 'img', usedAt: 100 };
  t.same(evictions([plain], { imageKey: 'img' }), [], 'saving the --memcheck guest keeps the plain one');
  const saved = [
    plain,
    { dir: '/s/memcheck', imageKey: 'img', usedAt: 300 },
    { dir: '/s/usb', imageKey: 'img', usedAt: 200 },
    { dir: '/s/old', imageKey: 'img', usedAt: 50 },
    { dir: '/s/other-image', imageKey: 'other', usedAt: 1 },
  ];
  t.same(evictions(saved, { imageKey: 'img' }), ['/s/old'], 'the fifth goes: the one used longest ago, of this image only');
  t.same(evictions(saved, { imageKey: 'img', keep: 2 }), ['/s/usb', '/s/plain', '/s/old']);
  // findSnapshot records each use, outside the integrity record, so a resume counts as a use and the saved files are not touched.
  const cache = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-snap-used-'));
  const dir = path.join(snapshotsDir(cache), 'k');
  await mkdir(dir, { recursive: true });
  for (const f of ['state', 'disk.qcow2', 'meta.json']) await writeFile(path.join(dir, f), f);
  await recordIntegrity(dir, ['state', 'disk.qcow2', 'meta.json']);
  t.equal(await findSnapshot(cache, 'k'), dir);
  t.ok(existsSync(path.join(dir, USED)), 'its use is recorded');
  t.equal(await findSnapshot(cache, 'k'), dir, 'and the record does not make it look changed');
});
