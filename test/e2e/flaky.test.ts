// #26.4 and #26.5 end to end: flake hunting and the reproducer, on a suite
// whose flake has a known rate (test/e2e/fixtures/flaky-suite: on one guest
// every third run of `count` fails; a fresh guest starts counting again), so
// this test is not flaky itself. --repeat on one guest reports the test
// flaky with its pass rate; the same on fresh guests passes (each run really
// is on its own guest); --until-fail stops at the first failure; a failed
// run's reproduce.sh, run from another copy of the repository as a run
// downloaded from CI would be, fails again with the same class. Never skipped.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-flaky-'));
const repo = path.join(work, 'repo');
cpSync(path.join(root, 'test/e2e/fixtures/flaky-suite'), repo, { recursive: true });
const bin = path.join(root, 'bin/kmodvm.js');

async function kmodvm(args: string[], cwd = repo) {
  const r = await execa('node', [bin, ...args], { cwd, reject: false, timeout: 20 * 60_000 });
  const runDir = /run directory: (\S+)/.exec(r.stderr)?.[1];
  const report = runDir ? JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8')) : undefined;
  return { ...r, runDir, report, out: `${r.stdout}\n${r.stderr.split('\n').slice(-30).join('\n')}` };
}

let failedRun: string | undefined;

t.test("--repeat 10 on one guest: count passes 7 of 10 and is flaky; the run fails with the runs' class; each run is a report of its own", async (t) => {
  const r = await kmodvm(['test', '--only', 'count', '--repeat', '10', '--same-guest']);
  t.equal(r.exitCode, 12, r.out);
  t.same(r.report.passRates, [{ name: 'count', runs: 10, passed: 7, flaky: true, failure: 'app' }]);
  t.same(
    r.report.tests.filter((x: { ok: boolean }) => !x.ok).map((x: { name: string }) => x.name),
    ['count#3', 'count#6', 'count#9'],
  );
  const rep = r.report.checks.find((x: { name: string }) => x.name === 'repeat');
  t.match(rep, { ok: false, failure: 'app', message: 'flaky: count (7/10)' });
  t.match(r.stderr, /pass rates: count 7\/10 \(flaky\)/);
  t.equal((readFileSync(path.join(r.runDir!, 'junit.xml'), 'utf8').match(/<testcase [^>]*name="test count#/g) ?? []).length, 10, 'ten JUnit cases');
  t.match(readFileSync(path.join(r.runDir!, 'reproduce.sh'), 'utf8'), /--repro "\$run_dir"/);
  failedRun = r.runDir;
});

t.test('--repeat 3 on fresh guests: every run starts again at 1, so all pass, each after the first on its own guest', async (t) => {
  const r = await kmodvm(['test', '--only', 'count', '--repeat', '3']);
  t.equal(r.exitCode, 0, r.out);
  t.same(r.report.passRates, [{ name: 'count', runs: 3, passed: 3, flaky: false }]);
  t.same(
    r.report.tests.map((x: { freshGuest?: string }) => Boolean(x.freshGuest)),
    [false, true, true],
  );
});

t.test('--until-fail stops at the first failed run and says where', async (t) => {
  const r = await kmodvm(['test', '--only', 'count', '--repeat', '10', '--same-guest', '--until-fail']);
  t.equal(r.exitCode, 12, r.out);
  t.equal(r.report.tests.length, 3);
  t.match(r.report.checks.find((x: { name: string }) => x.name === 'repeat').evidence, /stopped at the first failure: count#3, 3 of 10 runs/);
});

t.test("--keep-on-fail=NAME: the failed run's guest stays up as an instance, as the test left it; ssh, gdb and down reach it", async (t) => {
  const name = `kept-${process.pid}`;
  const r = await kmodvm(['test', '--only', 'count', '--repeat', '10', '--same-guest', `--keep-on-fail=${name}`]);
  t.teardown(() => kmodvm(['down', '--name', name]).then(() => undefined));
  t.equal(r.exitCode, 12, r.out);
  t.equal(r.report.tests.length, 3, 'it stopped at the first failure');
  t.match(
    r.report.checks.find((x: { name: string }) => x.name === 'keep-on-fail'),
    { ok: true, message: new RegExp(`kept up as instance ${name}`) },
  );
  t.match(r.stderr, new RegExp(`kmodvm gdb --name ${name}`));
  t.match((await kmodvm(['status'])).stdout, new RegExp(`^${name} `, 'm'));
  const count = await kmodvm(['ssh', '--name', name, '--', 'cat', '/run/kmodvm-flaky-count']);
  t.equal(count.stdout.trim(), '3', 'the guest the third run failed on');
  const script = path.join(work, 'kept.gdb');
  writeFileSync(script, 'print 6*7\n');
  const gdb = await kmodvm(['gdb', '--name', name, '--batch', script]);
  t.equal(gdb.exitCode, 0, gdb.out);
  t.match(gdb.stdout, /\$1 = 42/);
  t.match(gdb.stdout, /detached/);
  t.equal((await kmodvm(['ssh', '--name', name, '--', 'true'])).exitCode, 0, 'the guest runs on after gdb');
  const down = await kmodvm(['down', '--name', name]);
  t.equal(down.exitCode, 0);
  const taken = await kmodvm(['test', '--keep-on-fail=x', '--reuse', 'x']);
  t.equal(taken.exitCode, 2, 'with --reuse: bad input');
});

t.test('reproduce.sh of the failed run, from another copy of the repository (a CI download): the same tests, the same failure class', async (t) => {
  t.ok(failedRun, 'the first test left a failed run');
  const other = path.join(work, 'elsewhere');
  cpSync(path.join(root, 'test/e2e/fixtures/flaky-suite'), other, { recursive: true });
  const downloaded = path.join(work, 'download');
  cpSync(failedRun!, downloaded, { recursive: true });
  const r = await execa('sh', [path.join(downloaded, 'reproduce.sh')], { cwd: other, reject: false, env: { KMODVM: `node ${bin}` }, timeout: 20 * 60_000 });
  t.equal(r.exitCode, 12, r.stderr.split('\n').slice(-20).join('\n'));
  t.match(r.stderr, /reproducing .*download: count on debian-12, which failed with app/);
  const runDir = /run directory: (\S+)/.exec(r.stderr)?.[1];
  t.match(runDir, new RegExp(`^${other}/runs/`), 'the rerun is in the copy it ran from');
  const report = JSON.parse(readFileSync(path.join(runDir!, 'report.json'), 'utf8'));
  t.same(report.passRates, [{ name: 'count', runs: 10, passed: 7, flaky: true, failure: 'app' }]);
});

t.test('--shuffle=SEED gives one order every time, and prints it; bad input is exit 2 before anything boots', async (t) => {
  const order = async (seed: string) => /tests (\S.*) \(load/.exec((await kmodvm(['test', '--repeat', '3', `--shuffle=${seed}`, '--dry-run'])).stderr)?.[1];
  const a = await order('11');
  t.equal(await order('11'), a);
  t.not(await order('12'), a);
  t.equal(a?.split(', ').length, 6);
  const notRun = await kmodvm(['test', '--repro', work]);
  t.equal(notRun.exitCode, 2, notRun.out);
  t.match(notRun.stderr, /not a failed run's directory/);
  const zero = await kmodvm(['test', '--repeat', '0']);
  t.equal(zero.exitCode, 2, zero.out);
  t.match(zero.stderr, /repeat/);
});

t.test(
  "params for a module the suite does not build: exit 2 at the suite's line once the host build names the modules, before the upload and setup (#29.18)",
  async (t) => {
    const dir = path.join(work, 'bad-params');
    cpSync(repo, dir, { recursive: true, filter: (src) => !src.includes('/runs') });
    const file = path.join(dir, 'kmodvm.yaml');
    writeFileSync(file, `${readFileSync(file, 'utf8')}  - name: bad\n    run: "true"\n    params:\n      nosuch: x=1\n`);
    const lines = readFileSync(file, 'utf8').split('\n');
    const r = await kmodvm(['test', '--suite', file], dir);
    t.equal(r.exitCode, 2, r.out);
    t.match(
      r.stdout,
      new RegExp(
        `^not ok \\d+ params - ${file}:${lines.indexOf('      nosuch: x=1') + 1}: tests\\[2\\]\\.params\\.nosuch: test bad gives parameters to nosuch, which the suite does not build \\(it builds tally\\)`,
        'm',
      ),
    );
    t.notMatch(r.stdout, /^ok \d+ upload/m, 'nothing was uploaded');
    t.notMatch(r.stdout, /insmod/, 'no test ran');
  },
);
