import { mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { resumable, resumedCommand, resumeOrSave } from '../../../scripts/lib/vm/resume.ts';
import { findSnapshot, snapshotKey, snapshotsDir, UNUSABLE } from '../../../scripts/lib/vm/snapshot.ts';
import { ids, spec } from '../../helpers/snapshot-spec.ts';

t.test("only the lean profile's own guest resumes", async (t) => {
  t.equal(resumable({ resume: true, profile: 'lean' }, {}), true);
  t.equal(resumable({ resume: false, profile: 'lean' }, {}), false, '--no-resume');
  t.equal(resumable({ resume: true, profile: 'systemd' }, {}), false, 'the classic boot is measured as a boot');
  t.equal(resumable({ resume: true, profile: 'lean' }, { byoInitrd: '/k/initrd' }), false, 'your own kernel');
  t.equal(resumable({ resume: true, profile: 'lean' }, { probeKvm: true }), false, 'a KVM probe must see the guest boot');
  t.equal(
    resumable({ resume: true, profile: 'lean', debugKernel: 'debian-12-debug' }, { byoInitrd: '/c/kernels/d/initrd-k.cpio' }),
    true,
    "the debug kernel's guest is saved too (#27.4)",
  );
  t.equal(resumable({ resume: true, profile: 'lean', debugKernel: 'debian-12-debug' }, {}), false, 'not without its initrd');
  t.equal(resumable({ resume: false, profile: 'lean', debugKernel: 'debian-12-debug' }, { byoInitrd: '/i' }), false, '--no-resume');
});

t.test("the resumed guest's clock command: one date, the marker with the uptime, quoted for dash", async (t) => {
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
  await writeFile(
    marker,
    JSON.stringify({ key, imageKey: ids.imageKey, reason: 'resuming: the guest did not resume (QEMU exited: load of migration failed)' }),
  );
  const lines: string[] = [];
  // No QEMU is started: the spec's kernel does not even exist.
  const r = await resumeOrSave({
    cacheDir: cache,
    spec,
    ...ids,
    privateKey: '',
    hostPublicKey: '',
    deadlineMs: 1000,
    log: (l) => lines.push(l),
    retryBoot: () => false,
  });
  t.equal(r, undefined);
  t.same(lines, [
    `snapshot: saving or resuming this guest failed on this host before (resuming: the guest did not resume (QEMU exited: load of migration failed)); booting. Delete ${marker} to try again`,
  ]);
  t.equal(await findSnapshot(cache, key), undefined, 'a marker is not a snapshot');
});
