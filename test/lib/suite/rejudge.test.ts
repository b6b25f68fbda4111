// kmodvm judge: a run directory judged again without a VM gives the run's
// verdict, or the verdict against another transcript. The evidence is the
// recorded foreign run (test/fixtures/suite-6.1).
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { rejudge, type SavedTest } from '../../../scripts/lib/suite/rejudge.ts';
import { parseStateAfter, parseStateBefore } from '../../../scripts/lib/suite/test-plan.ts';
import type { RunReport } from '../../../scripts/lib/verdict/model.ts';
import { loadRules } from '../../../scripts/lib/verdict/splat.ts';

const root = new URL('../../../', import.meta.url).pathname;
const fx = (f: string): string => readFileSync(path.join(root, 'test/fixtures', f), 'utf8');
const rules = loadRules([path.join(root, 'rules/splat.json')]);
const res = (stdout = '', exitCode = 0) => ({
  command: 'x',
  exitCode,
  signal: undefined,
  timedOut: false,
  stdout,
  stderr: '',
  durationMs: 5,
  reason: `exited ${exitCode}`,
});

function runDir(): string {
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-rejudge-'));
  const after = parseStateAfter(fx('suite-6.1/ctl-read.state-after.stdout'));
  const saved: SavedTest = {
    evidence: {
      loads: [
        { name: 'insmod bebop_core', ok: true, result: res() },
        { name: 'insmod bebop_user', ok: true, result: res() },
      ],
      run: { name: 'run', ok: true, result: res(fx('suite-6.1/ctl-read.run.stdout')) },
      unloads: [
        { name: 'rmmod bebop_user', ok: true, result: res() },
        { name: 'rmmod bebop_core', ok: true, result: res() },
      ],
      taintBefore: parseStateBefore(fx('suite-6.1/ctl-read.state-before.stdout')).taint,
      taintAfter: after.taint,
      pid: after.pid,
      kernelLog: after.dmesg,
      serial: '',
    },
    expect: { exitCode: 0, transcriptFile: path.join(root, 'test/e2e/fixtures/foreign-suite/expected/ctl-read.transcript'), loadsHere: true },
  };
  mkdirSync(path.join(d, 'tests/ctl-read'), { recursive: true });
  writeFileSync(path.join(d, 'tests/ctl-read/evidence.json'), JSON.stringify(saved));
  const report: RunReport = {
    verdict: 'pass',
    exitCode: 0,
    runDir: d,
    accel: 'tcg',
    startedAt: 'x',
    durationMs: 1,
    testsAt: 1,
    checks: [
      { name: 'boot', ok: true, durationMs: 1 },
      { name: 'no-splat', ok: true, durationMs: 0 },
    ],
    tests: [{ name: 'ctl-read', ok: true, durationMs: 1, checks: [] }],
  };
  writeFileSync(path.join(d, 'report.json'), JSON.stringify(report));
  return d;
}

t.test('the same evidence, the same verdict; another transcript, its verdict', async (t) => {
  const d = runDir();
  const same = await rejudge(d, rules);
  t.equal(same.exitCode, 0);
  t.equal(same.tests?.[0].checks.find((c) => c.name === 'transcript')?.ok, true);
  t.equal(same.tests?.[0].captures?.pid, '157');
  const other = await rejudge(d, rules, { transcript: path.join(root, 'test/e2e/fixtures/foreign-suite/expected/param-override.transcript') });
  t.equal(other.exitCode, 1, 'the transcript class');
  t.equal(other.tests?.[0].failure, 'transcript');
});

t.test('not a run directory, or a run without evidence: bad input', async (t) => {
  await t.rejects(rejudge(mkdtempSync(path.join(os.tmpdir(), 'kmodvm-rejudge-empty-')), rules), {
    failure: 'usage',
    message: /no report\.json: not a run directory/,
  });
  const d = runDir();
  rmSync(path.join(d, 'tests/ctl-read/evidence.json'));
  await t.rejects(rejudge(d, rules), { failure: 'usage', message: /evidence\.json is missing/ });
});

t.test(
  'a run directory from elsewhere is checked: a malformed file is bad input, and a transcript it names outside this checkout is not read (#24)',
  async (t) => {
    const d = runDir();
    const ev = path.join(d, 'tests/ctl-read/evidence.json');
    const saved = JSON.parse(readFileSync(ev, 'utf8')) as SavedTest;
    const home = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-rejudge-home-'));
    writeFileSync(path.join(home, 'id_ed25519'), 'PRIVATE KEY\n');
    writeFileSync(ev, JSON.stringify({ ...saved, expect: { ...saved.expect, transcriptFile: path.join(home, 'id_ed25519') } }));
    const e1 = await rejudge(d, rules).catch((e) => e);
    t.equal(e1.failure, 'usage');
    t.match(e1.message, /cannot read the transcript .*id_ed25519: .*outside/);
    t.notMatch(`${e1.message}\n${e1.hint}`, /PRIVATE KEY/);
    writeFileSync(ev, JSON.stringify({ ...saved, evidence: { ...saved.evidence, loads: 'not a list' } }));
    await t.rejects(rejudge(d, rules), { failure: 'usage', message: /evidence\.json is not a kmodvm run's file: evidence\.loads/ });
    writeFileSync(ev, '{"evidence": ');
    await t.rejects(rejudge(d, rules), { failure: 'usage', message: /evidence\.json is not a kmodvm run's file/ });
    writeFileSync(path.join(d, 'report.json'), '[]');
    await t.rejects(rejudge(d, rules), { failure: 'usage', message: /report\.json is not a kmodvm run's file/ });
  },
);
