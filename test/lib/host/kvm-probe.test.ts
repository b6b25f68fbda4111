import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { defaultConfig, validateConfig } from '../../../scripts/lib/core/config.ts';
import { hostId, memoFile, readMemo, serialSpeaks, writeMemo } from '../../../scripts/lib/host/kvm-probe.ts';
import { pickAccel } from '../../../scripts/lib/loop/pick-accel.ts';

const root = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const cfg = (accel: 'auto' | 'kvm' | 'tcg' = 'auto') =>
  validateConfig({ accel, cacheDir: mkdtempSync(path.join(os.tmpdir(), 'kmodvm-probe-')) }, defaultConfig({}, root));
const kvmHost = { kvmReadWrite: true, virtFlags: true };

t.test('auto on a KVM host: probe the first time, trust the memo afterwards', async (t) => {
  const c = cfg();
  t.same(await pickAccel(c, kvmHost), { accel: 'kvm', probeKvm: true });
  await writeMemo(c, true);
  t.same(await pickAccel(c, kvmHost), { accel: 'kvm', probeKvm: false });
  await writeMemo(c, false);
  const p = await pickAccel(c, kvmHost);
  t.equal(p.accel, 'tcg');
  t.match(p.note, /KVM hung a guest on this host before/);
});

t.test('forced accel and non-KVM hosts never probe', async (t) => {
  const c = cfg('kvm');
  await writeMemo(c, false);
  t.same(await pickAccel(c, kvmHost), { accel: 'kvm', probeKvm: false }, '--accel kvm is obeyed');
  t.equal((await pickAccel(cfg(), { kvmReadWrite: false, virtFlags: true })).probeKvm, false);
});

t.test('a memo from another host is ignored', async (t) => {
  const c = cfg();
  writeFileSync(memoFile(c), JSON.stringify({ host: 'elsewhere 1.0', kvmWorks: false, checkedAt: 'x' }));
  t.equal(await readMemo(c), undefined);
  await writeMemo(c, true);
  t.equal((await readMemo(c))?.host, hostId());
});

t.test('serialSpeaks: true as soon as a byte lands, false at the deadline or when QEMU dies', async (t) => {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-serial-'));
  const f = path.join(d, 'serial.log');
  writeFileSync(f, '');
  setTimeout(() => writeFileSync(f, 'Linux version'), 100);
  t.equal(await serialSpeaks(f, 2000, () => true), true);
  writeFileSync(f, '');
  const t0 = Date.now();
  t.equal(await serialSpeaks(f, 300, () => true), false);
  t.ok(Date.now() - t0 >= 300);
  t.equal(await serialSpeaks(f, 5000, () => false), false, 'a dead QEMU ends the wait at once');
});
