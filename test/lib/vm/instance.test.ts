import { mkdtempSync, existsSync, mkdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../../scripts/lib/core/config.ts';
import { isQemuAlive, listNames, lookup, uptime, validateName, writeState, type InstanceState } from '../../../scripts/lib/vm/instance.ts';

const cfg = () => ({ ...defaultConfig({}, '/repo'), cacheDir: mkdtempSync(path.join(os.tmpdir(), 'kmodvm-inst-')) });
const state = (dir: string, pid: number): InstanceState => ({
  name: 'default',
  pid,
  port: 40022,
  accel: 'tcg',
  imageKey: 'k',
  imageDir: '/i',
  kernelVersion: '6.1.0-56-amd64',
  startedAt: new Date(Date.now() - 65_000).toISOString(),
  dir,
  serialLog: `${dir}/serial.log`,
  clientKey: '/i/id',
  hostPub: '/i/host.pub',
});

t.test('instance names are checked, naming the field', async (t) => {
  t.equal(validateName('dev-1'), 'dev-1');
  t.throws(() => validateName('../etc'), /config field `name`/);
  t.throws(() => validateName(''), /config field `name`/);
});

t.test('a pid that is not a QEMU is not alive', async (t) => {
  t.equal(isQemuAlive(process.pid), false, 'this node process is alive but is not QEMU');
  t.equal(isQemuAlive(2 ** 22 + 7), false);
});

t.test('a stale instance (QEMU gone, files left) is cleaned up with a note', async (t) => {
  const c = cfg();
  const dir = path.join(c.cacheDir, 'instances', 'default');
  await writeState(state(dir, 2 ** 22 + 7));
  t.same(await listNames(c), ['default']);
  const l = await lookup(c, 'default');
  t.equal(l.alive, false);
  t.match(l.alive ? '' : l.staleNote, /instance default was stale \(QEMU pid \d+ is gone\); cleaned up its files/);
  t.equal(existsSync(dir), false);
});

t.test('a directory without state.json (interrupted vm:up) is removed', async (t) => {
  const c = cfg();
  mkdirSync(path.join(c.cacheDir, 'instances', 'half'), { recursive: true });
  t.same(await lookup(c, 'half'), { alive: false });
  t.same(await listNames(c), []);
});

t.test('uptime reads like a person would write it', async (t) => {
  const s = state('/d', 1);
  t.equal(uptime(s, Date.parse(s.startedAt) + 65_000), '1m05s');
  t.equal(uptime(s, Date.parse(s.startedAt) + 3_725_000), '1h02m');
  t.equal(uptime(s, Date.parse(s.startedAt) + 9_000), '9s');
});
