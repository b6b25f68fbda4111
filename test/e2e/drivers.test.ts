// #25 end to end, the in-tree side of a driver: the fixtures (the kernel's
// own test doubles, set up before the suite's module and taken down after),
// and Debian's own v4l2loopback-dkms source, fetched from the Debian archive
// at test time (mmdebstrap --variant=extract), which needs videodev from the
// image's whole module tree (#29.4) and gets its parameters, one with a
// space, as the kernel reads them (#29.6). On the stock kernel and on the
// debug kernel. Never skipped: a VM or a fetch that cannot run fails here.
import { cpSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-drivers-'));
const runs = path.join(work, 'runs');

interface Check {
  name: string;
  ok: boolean;
  message?: string;
}

async function runSuite(suite: string, extra: string[] = []) {
  const r = await execa('node', [path.join(root, 'bin/kmodvm.js'), 'test', '--suite', suite, '--runs-dir', runs, ...extra], {
    cwd: work,
    reject: false,
    timeout: 40 * 60_000,
  });
  const runDir = /run directory: (\S+)/.exec(r.stderr)?.[1];
  const report = runDir ? JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8')) : { tests: [], checks: [] };
  const checks = (report.checks ?? []) as Check[];
  return { exitCode: r.exitCode, report, checks, out: `${r.stdout}\n${r.stderr.split('\n').slice(-40).join('\n')}` };
}

/** Debian's v4l2loopback-dkms, extracted from the archive, its source as a suite: video_nr=7 with a card label that has a space. */
async function v4l2loopbackSuite(): Promise<string> {
  const x = path.join(work, 'v4l2loopback-deb');
  mkdirSync(x, { recursive: true });
  const r = await execa('mmdebstrap', ['--variant=extract', '--mode=auto', '--include=v4l2loopback-dkms', 'bookworm', path.join(x, 'root')], {
    reject: false,
    timeout: 15 * 60_000,
    all: true,
  });
  if (r.exitCode !== 0) throw new Error(`cannot fetch v4l2loopback-dkms from the Debian archive (${r.exitCode}):\n${r.all?.split('\n').slice(-15).join('\n')}`);
  const dir = path.join(work, 'v4l2loopback');
  cpSync(path.join(x, 'root/usr/src/v4l2loopback-0.12.7'), dir, { recursive: true });
  writeFileSync(
    path.join(dir, 'kmodvm.yaml'),
    [
      '# v4l2loopback 0.12.7 as Debian ships it: its Makefile reads KERNEL_DIR; it needs videodev (and mc), modprobed by kmodvm.',
      'modules:',
      '  - dir: .',
      '    params: ["video_nr=7", "card_label=Cam One", "exclusive_caps=1"]',
      'tests:',
      '  - name: video7',
      '    run: cat /sys/devices/virtual/video4linux/video7/name; test -c /dev/video7 && echo /dev/video7 is a character device',
      '    transcript: video7.transcript',
      '',
    ].join('\n'),
  );
  writeFileSync(path.join(dir, 'video7.transcript'), '[app]\nCam One\n/dev/video7 is a character device\n');
  return path.join(dir, 'kmodvm.yaml');
}

const fixtureSuite = (): string => {
  const dir = path.join(work, 'fixtures-suite');
  cpSync(path.join(root, 'test/e2e/fixtures/fixtures-suite'), dir, { recursive: true });
  return path.join(dir, 'kmodvm.yaml');
};

t.test('an unknown fixture is bad input: exit 2 naming the file and line, before anything boots', async (t) => {
  const dir = path.join(work, 'bad-fixture');
  cpSync(path.join(root, 'test/e2e/fixtures/fixtures-suite'), dir, { recursive: true });
  const file = path.join(dir, 'kmodvm.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('  - vcan\n', '  - vcan\n  - snd-dummy\n'));
  const r = await runSuite(file);
  t.equal(r.exitCode, 2, r.out);
  t.match(r.out, /kmodvm\.yaml:\d+: fixtures\[\d\]: unknown fixture "snd-dummy"/);
  t.notMatch(r.out, /boot/, 'nothing booted');
});

t.test('the fixtures on the stock kernel: each set up before the module, the module reads through i2c-stub, each taken down after', async (t) => {
  const r = await runSuite(fixtureSuite());
  t.equal(r.exitCode, 0, `it passes\n${r.out}`);
  const names = r.checks.map((c) => c.name);
  for (const n of [
    'fixture i2c-stub: modprobe i2c_stub chip_addr=0x50',
    'fixture gadget-acm: setup[0]',
    'fixture vcan: undo[0]',
    'fixture i2c-stub: modprobe -r i2c_dev i2c_stub',
  ])
    t.ok(names.includes(n), n);
  t.ok(
    names.indexOf('fixture mac80211_hwsim: modprobe -r mac80211_hwsim') < names.indexOf('fixture i2c-stub: modprobe -r i2c_dev i2c_stub'),
    'removed in reverse',
  );
});

t.test("the suite's own modules in dependency order, not modules.order's (#29.2): provider before user, user out first", async (t) => {
  const dir = path.join(work, 'order-suite');
  cpSync(path.join(root, 'test/e2e/fixtures/order-suite'), dir, { recursive: true });
  const r = await runSuite(path.join(dir, 'kmodvm.yaml'));
  t.equal(r.exitCode, 0, r.out);
  const names = (r.report.tests[0]?.checks ?? []).map((c: Check) => c.name).filter((n: string) => /^(insmod|rmmod) /.test(n));
  t.same(names, ['insmod provider', 'insmod user', 'rmmod user', 'rmmod provider']);
});

// v4l2loopback on the stock kernel, through the packed tool: test/e2e/dkms.test.ts.

t.test('on the debug kernel: the edu demo with its lifecycle checks, the fixtures, and v4l2loopback', async (t) => {
  const edu = await runSuite(path.join(root, 'examples/edu/kmodvm.yaml'), ['--kernel', 'debian-12-debug']);
  t.equal(edu.exitCode, 0, `the edu demo passes on the debug kernel\n${edu.out}`);
  // The planted remove-path bug (bug=1: the handler left registered) on the debug kernel, caught by unbind_bind at the driver's line.
  const dir = path.join(work, 'edu-planted');
  cpSync(path.join(root, 'examples/edu'), dir, { recursive: true });
  const planted = readFileSync(path.join(dir, 'kmodvm.yaml'), 'utf8').replace(
    /^tests:\n/m,
    'tests:\n  - name: planted\n    run: ./app/edu-app fact 3\n    params: {edu: "bug=1"}\n    lifecycle: {unbind_bind: true}\n',
  );
  writeFileSync(path.join(dir, 'planted.yaml'), planted);
  const line =
    readFileSync(path.join(dir, 'driver/edu.c'), 'utf8')
      .split('\n')
      .findIndex((l) => l.includes('/* PLANTED')) + 1;
  const bug = await runSuite(path.join(dir, 'planted.yaml'), ['--kernel', 'debian-12-debug', '--only', 'planted']);
  t.equal(bug.exitCode, 13, `a splat on the debug kernel\n${bug.out}`);
  const splat = bug.report.tests[0]?.checks.find((c: Check) => c.name === 'no-splat' && !c.ok);
  t.match(splat?.message ?? '', new RegExp(`\\(driver/edu\\.c:${line}\\)`), `the report points at edu.c:${line}`);
  const fx = await runSuite(fixtureSuite(), ['--kernel', 'debian-12-debug']);
  // The debug kernel builds no wireless stack (docs/devices.md): that one fixture is a load failure that says so.
  t.equal(fx.exitCode, 11, `mac80211_hwsim is not in the debug kernel\n${fx.out}`);
  const hwsim = fx.checks.find((c) => c.name.startsWith('fixture mac80211_hwsim: modprobe'));
  t.match(hwsim?.message ?? '', /this kernel has no mac80211_hwsim .*docs\/devices\.md/);
  const fxDir = path.dirname(fixtureSuite());
  const file = path.join(fxDir, 'kmodvm.yaml');
  writeFileSync(file, readFileSync(file, 'utf8').replace('  - mac80211_hwsim radios=2\n', ''));
  writeFileSync(path.join(fxDir, 'check.sh'), readFileSync(path.join(fxDir, 'check.sh'), 'utf8').replace(/^echo "mac80211_hwsim.*\n/m, ''));
  const tr = path.join(fxDir, 'expected/fixtures.transcript');
  writeFileSync(tr, readFileSync(tr, 'utf8').replace('mac80211_hwsim: 2 radios\n', ''));
  const fx2 = await runSuite(file, ['--kernel', 'debian-12-debug']);
  t.equal(fx2.exitCode, 0, `the other fixtures pass on the debug kernel\n${fx2.out}`);
  const v = await runSuite(await v4l2loopbackSuite(), ['--kernel', 'debian-12-debug']);
  t.equal(v.exitCode, 0, `v4l2loopback passes on the debug kernel\n${v.out}`);
  // A sound driver against the debug kernel, which builds no ALSA: modpost's undefined symbols name the option (#25.7).
  const sound = path.join(work, 'sound-suite');
  cpSync(path.join(root, 'test/e2e/fixtures/sound-suite'), sound, { recursive: true });
  const snd = await runSuite(path.join(sound, 'kmodvm.yaml'), ['--kernel', 'debian-12-debug']);
  t.equal(snd.exitCode, 10, `a build failure\n${snd.out}`);
  const b = snd.checks.find((c) => c.name === 'build-module');
  t.match(b?.message ?? '', /needs what this kernel is built without \(CONFIG_SND\)/);
});
