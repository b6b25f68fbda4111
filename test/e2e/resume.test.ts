// Resume instead of boot (scripts/lib/vm/resume.ts), on real guests: two
// instances resumed from the same snapshot at once get different random
// numbers (QEMU's VM generation ID makes each reseed) and the host's clock;
// a snapshot that will not resume is removed, the run boots and passes, and
// the next run saves a new one. Private instance names keep it apart from a
// developer's own VMs; the snapshot is the image's, in the usual cache.
import { existsSync, mkdtempSync, readdirSync, readFileSync, truncateSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { loadConfig } from '../../scripts/lib/core/flags.ts';
import { INTEGRITY, recordIntegrity } from '../../scripts/lib/core/integrity.ts';
import { findImage, imageKey } from '../../scripts/lib/image/image.ts';
import { guestSpec } from '../../scripts/lib/vm/profile.ts';
import { qemuVersion, resumeOrSave } from '../../scripts/lib/vm/resume.ts';
import { snapshotsDir } from '../../scripts/lib/vm/snapshot.ts';

const root = new URL('../../', import.meta.url).pathname;
const tsx = path.join(root, 'node_modules/.bin/tsx');
const runsDir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-e2e-resume-'));
const names = [`e2e-resume-a-${process.pid}`, `e2e-resume-b-${process.pid}`];
const cli = (verb: string, args: string[]) =>
  execa(tsx, [path.join(root, 'scripts/kmodvm.ts'), verb, ...args], { reject: false, cwd: root, timeout: 20 * 60_000 });
const vmTest = (args: string[]) =>
  execa(tsx, [path.join(root, 'scripts/kmodvm.ts'), 'test', '--runs-dir', runsDir, ...args], { reject: false, cwd: root, timeout: 20 * 60_000 });
t.teardown(async () => {
  for (const n of names) await cli('down', ['--name', n]);
});

t.test("two guests resumed from one snapshot at once: their own random numbers, the host's clock", async (t) => {
  // The first vm:up saves the snapshot when there is none; then both resume from it together.
  const first = await cli('up', ['--name', names[0]]);
  if (first.exitCode !== 0) t.comment(first.stderr.split('\n').slice(-20).join('\n'));
  t.equal(first.exitCode, 0);
  await cli('down', ['--name', names[0]]);
  const ups = await Promise.all(names.map((n) => cli('up', ['--name', n])));
  for (const [i, up] of ups.entries()) {
    if (up.exitCode !== 0) t.comment(up.stderr.split('\n').slice(-20).join('\n'));
    t.equal(up.exitCode, 0, `${names[i]} is up`);
    t.match(up.stderr, /up in [\d.]+ s \(resumed from a snapshot/);
  }
  const reads = await Promise.all(
    names.map((n) => cli('ssh', ['--name', n, 'sh', '-c', 'od -An -tx1 -N16 /dev/urandom | tr -d " \\n"; echo; date +%s; dmesg'])),
  );
  const [a, b] = reads.map((r) => r.stdout.split('\n'));
  t.match(a[0], /^[0-9a-f]{32}$/);
  t.not(a[0], b[0], 'the two resumed guests read different random bytes');
  for (const [i, lines] of [a, b].entries()) {
    t.ok(Math.abs(Number(lines[1]) - Date.now() / 1000) < 60, `${names[i]}: the guest clock is the host's (${lines[1]})`);
    t.match(lines.join('\n'), /random: crng reseeded due to virtual machine fork/, `${names[i]}: the kernel reseeded its RNG`);
  }
  const logs = await cli('logs', ['--name', names[1]]);
  t.match(logs.stdout, /kmodvm-init: resumed from a snapshot at [\d.]+s; clock set to \d{4}-/);
});

t.test('a snapshot that will not resume is removed; the run boots and passes; the next run saves a new one', async (t) => {
  for (const n of names) await cli('down', ['--name', n]);
  const { config: c } = loadConfig([]);
  const dir = snapshotsDir(c.cacheDir);
  // Only the default image's saved guest: the other kernels' stay as they are.
  const mine = imageKey(c).key;
  const snaps = readdirSync(dir).filter(
    (n) =>
      /^[0-9a-f]{16}$/.test(n) && existsSync(path.join(dir, n, 'state')) && JSON.parse(readFileSync(path.join(dir, n, 'meta.json'), 'utf8')).imageKey === mine,
  );
  t.ok(snaps.length > 0, 'the test above left a snapshot');
  // Damage the integrity record cannot see (it is recorded again over the damage): only the resume finds it.
  for (const n of snaps) {
    truncateSync(path.join(dir, n, 'state'), 4096);
    if (existsSync(path.join(dir, n, INTEGRITY))) await recordIntegrity(path.join(dir, n), ['state', 'disk.qcow2', 'meta.json']);
  }
  const r = await vmTest([]);
  if (r.exitCode !== 0) t.comment(r.stderr.split('\n').slice(-30).join('\n'));
  t.equal(r.exitCode, 0, 'the run still passes');
  t.match(r.stderr, /snapshot: the guest did not resume from .*; removing snapshot [0-9a-f]{16} and booting/);
  t.match(r.stderr, /verdict: PASS in [\d.]+ s, boot to SSH/);
  const next = await vmTest([]);
  t.equal(next.exitCode, 0);
  t.match(next.stderr, /snapshot: none yet for this image and VM configuration/);
  t.match(next.stderr, /boot, save and resume to SSH/);
  const runDir = /run directory: (\S+)/.exec(next.stderr)?.[1] ?? '';
  t.match(readFileSync(path.join(runDir, 'serial-boot.log'), 'utf8'), /kmodvm-init: sshd-started at/, "the saved boot's console is kept beside the run's");
});

t.test('a saving boot whose SSH port was taken meanwhile is not a boot failure: the caller boots instead (it was exit 5)', async (t) => {
  const { config: c0 } = loadConfig([]);
  const c = { ...c0, cacheDir: mkdtempSync(path.join(os.tmpdir(), 'kmodvm-e2e-portrace-')) };
  const img = await findImage(c0);
  t.ok(img, 'the image is built (the tests above used it)');
  const taken = net.createServer();
  await new Promise<void>((r) => taken.listen(0, '127.0.0.1', r));
  t.teardown(() => taken.close());
  const port = (taken.address() as net.AddressInfo).port;
  const logs: string[] = [];
  const spec = guestSpec(c, img!, 'tcg', port, mkdtempSync(path.join(runsDir, 'portrace-')));
  const r = await resumeOrSave({
    cacheDir: c.cacheDir,
    spec,
    imageKey: img!.key,
    qemuVersion: await qemuVersion(),
    privateKey: readFileSync(img!.clientKey, 'utf8'),
    hostPublicKey: readFileSync(img!.hostPub, 'utf8'),
    deadlineMs: 60_000,
    log: (l) => logs.push(l),
    retryBoot: () => false,
  });
  t.equal(r, undefined, 'no resume, and no throw');
  t.match(logs.join('\n'), /the SSH port was taken meanwhile; booting/);
  const sdir = snapshotsDir(c.cacheDir);
  const marked = existsSync(sdir) ? readdirSync(sdir).filter((n) => existsSync(path.join(sdir, n, 'unusable.json'))) : [];
  t.same(marked, [], 'the key is not marked unusable');
});
