// #29 end to end, as a new user meets kmodvm: Debian's own DKMS sources
// (lttng-modules-dkms 2.13.9, jool-dkms 4.1.9, v4l2loopback-dkms 0.12.7),
// fetched from the Debian archive at test time (mmdebstrap
// --variant=extract), each with a kmodvm.yaml from
// test/e2e/fixtures/dkms/, run with the packed tool (npm pack, installed in
// a folder outside this checkout) as `npx kmodvm test`. lttng carries one
// patch, test/e2e/fixtures/dkms/lttng-2.13.9-hrtimer-was-armed.patch: Debian's
// 6.1 kernel backports hrtimer_start's was_armed argument, which lttng
// 2.13.9 does not know (#29.7); the unpatched build's error is checked to
// name lttng's own line. Never skipped: a fetch or a VM that cannot run
// fails here.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const fixtures = path.join(root, 'test/e2e/fixtures/dkms');
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-dkms-'));
const sources = path.join(work, 'debian');
const SRC = { lttng: 'lttng-modules-2.13.9', jool: 'jool-dkms-4.1.9', v4l2loopback: 'v4l2loopback-0.12.7' } as const;

const kmodvm = async (dir: string, args: string[] = []) => {
  const t0 = Date.now();
  const r = await execa('npx', ['--no-install', 'kmodvm', 'test', ...args], {
    cwd: dir,
    reject: false,
    timeout: 40 * 60_000,
    env: { npm_config_yes: 'false' },
  });
  const s = ((Date.now() - t0) / 1000).toFixed(1);
  return { ...r, seconds: s, out: `exited ${r.exitCode} in ${s} s\n${r.stdout}\n${r.stderr.split('\n').slice(-30).join('\n')}` };
};

/** A DKMS source as the package ships it, with its suite from the fixtures. */
const suiteDir = (name: keyof typeof SRC): string => {
  const dir = path.join(work, name);
  cpSync(path.join(sources, 'usr/src', SRC[name]), dir, { recursive: true });
  cpSync(path.join(fixtures, name), dir, { recursive: true });
  return dir;
};

t.before(async () => {
  const pack = await execa('npm', ['pack', '--pack-destination', work], { cwd: root });
  const tarball = path.join(work, pack.stdout.trim().split('\n').at(-1)!);
  writeFileSync(path.join(work, 'package.json'), JSON.stringify({ name: 'dkms-trial', private: true }, null, 2));
  await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: work, timeout: 15 * 60_000 });
  const x = await execa('mmdebstrap', ['--variant=extract', '--mode=auto', '--include=lttng-modules-dkms,jool-dkms,v4l2loopback-dkms', 'bookworm', sources], {
    reject: false,
    timeout: 15 * 60_000,
    all: true,
  });
  if (x.exitCode !== 0) throw new Error(`cannot fetch the DKMS sources from the Debian archive (${x.exitCode}):\n${x.all?.split('\n').slice(-15).join('\n')}`);
});

t.test('lttng-modules: unpatched, the build error names its own line; patched, all 49 modules load in dependency order and unload in reverse', async (t) => {
  const dir = suiteDir('lttng');
  const bad = await kmodvm(dir, ['--update']);
  if (!t.equal(bad.exitCode, 10, 'a build failure')) t.comment(bad.out);
  t.match(
    bad.stdout,
    new RegExp(`${dir}/include/instrumentation/events/timer\\.h:190:1: your code, where the error comes from \\(its use of LTTNG_TRACEPOINT_EVENT_MAP\\)`),
    "the user's line, not only the macro's",
  );
  t.match(
    bad.stdout,
    /note: previous definition of ‘trace_hrtimer_start’ with type ‘void\(struct hrtimer \*, enum hrtimer_mode, {2}bool\)’/,
    "and the kernel's side of it",
  );
  const p = await execa('git', ['apply', '-p1', path.join(fixtures, 'lttng-2.13.9-hrtimer-was-armed.patch')], { cwd: dir, reject: false });
  t.equal(p.exitCode, 0, `the patch applies\n${p.stderr}`);
  const first = await kmodvm(dir, ['--update']);
  if (!t.equal(first.exitCode, 0, 'it passes, writing its transcript')) t.comment(first.out);
  t.comment(`lttng-modules, cold host build and run: ${first.seconds} s`);
  t.match(first.stdout, /^ok \d+ build-module - on the host \(.*\bfrom \.\/src\/modules\.order\)/m, 'modules.order found below the dir (#29.9)');
  const loads = [...first.stdout.matchAll(/^ {4}ok \d+ (insmod|rmmod) (\S+)/gm)].map((m) => `${m[1]} ${m[2]}`);
  const ins = loads.filter((l) => l.startsWith('insmod')).map((l) => l.slice(7));
  const rms = loads.filter((l) => l.startsWith('rmmod')).map((l) => l.slice(6));
  t.equal(ins.length, 49, 'all 49 load');
  t.same(rms, [...ins].reverse(), 'and unload in reverse');
  for (const [user, provider] of [
    ['lttng_tracer', 'lttng_lib_ring_buffer'],
    ['lttng_probe_sched', 'lttng_tracer'],
    ['lttng_ring_buffer_client_discard', 'lttng_lib_ring_buffer'],
  ])
    t.ok(ins.indexOf(provider) < ins.indexOf(user), `${provider} before ${user}, which needs it`);
  t.equal(ins.indexOf('lttng_clock_plugin_test'), 1, "load:'s order: the clock plugin before the tracer");
  const tr = readFileSync(path.join(dir, 'loaded.transcript'), 'utf8');
  t.match(tr, /\[kernel\]\n(.*\n)*LTTng: Loaded modules v2\.13\.9/, '--update took the line lttng_tracer printed by its format, with no module name (#29.16)');
  t.match(tr, /\[app\]\n49\n\/proc\/lttng is there\n$/);
  const again = await kmodvm(dir);
  if (!t.equal(again.exitCode, 0, 'the written transcript passes the next run')) t.comment(again.out);
  t.comment(`lttng-modules, warm: ${again.seconds} s`);
});

t.test('jool: three module dirs, loaded common first; --update writes the lines it printed by its formats', async (t) => {
  const dir = suiteDir('jool');
  const first = await kmodvm(dir, ['--update']);
  if (!t.equal(first.exitCode, 0)) t.comment(first.out);
  t.comment(`jool, cold host build and run: ${first.seconds} s`);
  t.match(first.stdout, /^ok \d+ modprobe x_tables - for jool_siit, jool/m, 'its in-tree dependencies, modprobed');
  t.match(first.stdout, /ok 1 insmod jool_common .*\n {4}ok 2 insmod jool_siit .*\n {4}ok 3 insmod jool /);
  const tr = readFileSync(path.join(dir, 'loaded.transcript'), 'utf8');
  for (const l of ['Jool: Core Jool v4.1.9.0 module inserted.', 'SIIT Jool v4.1.9.0 module inserted.', 'NAT64 Jool v4.1.9.0 module removed.'])
    t.ok(tr.includes(`\n${l}\n`), `the transcript has ${l}`);
  const again = await kmodvm(dir);
  if (!t.equal(again.exitCode, 0)) t.comment(again.out);
  t.comment(`jool, warm: ${again.seconds} s`);
});

t.test('v4l2loopback: videodev modprobed, /dev/video7 with its card label', async (t) => {
  const r = await kmodvm(suiteDir('v4l2loopback'));
  if (!t.equal(r.exitCode, 0)) t.comment(r.out);
  t.comment(`v4l2loopback, cold host build and run: ${r.seconds} s`);
  t.match(r.stdout, /^ok \d+ modprobe videodev /m, 'videodev, from the image, as its own step');
  t.match(r.stdout, /^ok \d+ modprobe -r videodev /m, 'and out again after');
});
