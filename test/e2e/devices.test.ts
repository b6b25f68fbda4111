// #25 end to end: the edu demo (examples/edu/) on the stock kernel, its
// device hot-plugged into the resumed guest, its lifecycle checks
// (unbind_bind, reload, hot_unplug) and remove() under an open file; and
// its planted remove-path bug (bug=1: the interrupt handler left
// registered) caught by the unbind_bind check, at its source line. Never
// skipped: a VM that cannot run fails here.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-devices-'));
const runs = path.join(work, 'runs');

interface Check {
  name: string;
  ok: boolean;
  message?: string;
}
interface TestReport {
  name: string;
  ok: boolean;
  checks: Check[];
}

async function runSuite(suite: string, extra: string[] = []) {
  const r = await execa('node', [path.join(root, 'bin/kmodvm.js'), 'test', '--suite', suite, '--runs-dir', runs, ...extra], {
    cwd: work,
    reject: false,
    timeout: 20 * 60_000,
  });
  const runDir = /run directory: (\S+)/.exec(r.stderr)?.[1];
  const report = runDir ? JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8')) : { tests: [], checks: [] };
  return { exitCode: r.exitCode, report, out: `${r.stdout}\n${r.stderr.split('\n').slice(-40).join('\n')}` };
}

t.test('the edu demo: probe, MSI, DMA, remove under an open file, and the lifecycle checks, on a hot-plugged edu', async (t) => {
  const r = await runSuite(path.join(root, 'examples/edu/kmodvm.yaml'));
  t.equal(r.exitCode, 0, `it passes\n${r.out}`);
  const names = (r.report.checks as Check[]).map((c) => c.name);
  t.ok(names.includes('plug edu0'), 'the device was plugged over QMP');
  const test = (n: string): TestReport => r.report.tests.find((x: TestReport) => x.name === n);
  t.match(
    test('unbind-bind').checks.map((c) => c.name),
    ['insmod edu', 'run', 'rmmod edu', /^unbind-bind 0000:/, 'reload edu'],
  );
  t.ok(
    test('hot-unplug').checks.some((c) => c.name === 'hot-unplug edu0' && c.ok),
    'hot-unplug edu0: unplugged, plugged, bound again',
  );
  t.match(
    test('held-rmmod').checks.find((c) => c.name === 'held-rmmod edu')?.message ?? '',
    /rmmod refused while \/dev\/edu0 was held open/,
    'rmmod while a shell held /dev/edu0 open: refused, then the test’s own rmmod went through',
  );
});

t.test("the planted remove-path bug (bug=1) is caught by unbind_bind, at the driver's line", async (t) => {
  const dir = path.join(work, 'edu');
  cpSync(path.join(root, 'examples/edu'), dir, { recursive: true });
  const suite = readFileSync(path.join(dir, 'kmodvm.yaml'), 'utf8').replace(
    /^tests:\n/m,
    'tests:\n  - name: planted\n    run: ./app/edu-app fact 3\n    params: {edu: "bug=1"}\n    lifecycle: {unbind_bind: true}\n',
  );
  writeFileSync(path.join(dir, 'planted.yaml'), suite);
  const line =
    readFileSync(path.join(dir, 'driver/edu.c'), 'utf8')
      .split('\n')
      .findIndex((l) => l.includes('/* PLANTED')) + 1;
  const r = await runSuite(path.join(dir, 'planted.yaml'), ['--only', 'planted']);
  t.equal(r.exitCode, 13, `a splat\n${r.out}`);
  const splat = r.report.tests[0]?.checks.find((c: Check) => c.name === 'no-splat' && !c.ok);
  t.match(splat?.message ?? '', new RegExp(`\\(driver/edu\\.c:${line}\\)`), `the report points at edu.c:${line}`);
});
