import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../../scripts/lib/core/config.ts';
import {
  type InstanceState,
  isBooting,
  isQemuAlive,
  listNames,
  lockInstance,
  lookup,
  uptime,
  validateName,
  writeState,
} from '../../../scripts/lib/vm/instance.ts';

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

t.test("a planted state.json naming another directory never gets that directory deleted; only the instance's own goes", async (t) => {
  const c = cfg();
  const victim = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-victim-'));
  writeFileSync(path.join(victim, 'precious'), 'keep me');
  const own = path.join(c.cacheDir, 'instances', 'default');
  mkdirSync(own, { recursive: true });
  writeFileSync(path.join(own, 'state.json'), JSON.stringify(state(victim, 2 ** 22 + 7)));
  for (let i = 0; i < 2; i++) {
    const l = await lookup(c, 'default');
    t.equal(l.alive, false);
    if (i === 0) t.match(l.alive ? '' : l.staleNote, /names another directory/);
  }
  t.equal(readFileSync(path.join(victim, 'precious'), 'utf8'), 'keep me', 'the directory state.json named is untouched');
  t.equal(existsSync(own), false, "the instance's own directory is removed");
});

t.test('a truncated state.json is a stale instance with a note, not a SyntaxError for every status', async (t) => {
  const c = cfg();
  const own = path.join(c.cacheDir, 'instances', 'cut');
  mkdirSync(own, { recursive: true });
  writeFileSync(path.join(own, 'state.json'), '{"name":"cut","pid":12');
  const l = await lookup(c, 'cut');
  t.equal(l.alive, false);
  t.match(l.alive ? '' : l.staleNote, /instance cut was stale: its state.json does not parse/);
  t.same(await listNames(c), []);
});

t.test("a vm:up that has not written state.json yet holds the lock: its directory is not taken for an interrupted one's", async (t) => {
  const c = cfg();
  const release = await lockInstance(c, 'boot', 10);
  const dir = path.join(c.cacheDir, 'instances', 'boot');
  mkdirSync(dir, { recursive: true });
  const l = await lookup(c, 'boot');
  t.same({ alive: l.alive, booting: !l.alive && l.booting }, { alive: false, booting: true });
  t.equal(existsSync(dir), true, 'the booting instance keeps its files');
  t.equal(await isBooting(c, 'boot'), true);
  await release();
  t.equal(await isBooting(c, 'boot'), false);
  t.same(await lookup(c, 'boot'), { alive: false }, 'once the lock is gone, a directory without state.json is a leftover');
  t.equal(existsSync(dir), false);
});

t.test('a second lock of the same name waits for the first', async (t) => {
  const c = cfg();
  const order: string[] = [];
  const first = await lockInstance(c, 'x', 10);
  const second = lockInstance(c, 'x', 10).then((r) => {
    order.push('second');
    return r;
  });
  await new Promise((r) => setTimeout(r, 300));
  order.push('first releases');
  await first();
  await (await second)();
  t.same(order, ['first releases', 'second']);
});
