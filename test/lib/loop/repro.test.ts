import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';
import { readRepro, reproConfig, reproDrift, reproduceScript, reproOf, writeRepro } from '../../../scripts/lib/loop/repro.ts';
import type { RunReport } from '../../../scripts/lib/verdict/model.ts';

const root = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');
const c = {
  root,
  kernel: 'debian-12',
  memcheck: true,
  dump: true,
  coverage: true,
  failNth: 0,
  repeat: 1,
  sameGuest: false,
  untilFail: false,
  profile: 'lean' as const,
  only: [],
  shard: '',
};

async function repo(): Promise<string> {
  const d = await mkdtemp(path.join(os.tmpdir(), 'repro-'));
  await writeFile(path.join(d, 'kmodvm.yaml'), 'modules: [m]\n');
  return d;
}

const report = (dir: string, tests: RunReport['tests']): RunReport => ({
  verdict: 'fail',
  failure: 'transcript',
  exitCode: 10,
  runDir: path.join(dir, 'runs', 'r1'),
  accel: 'tcg',
  imageKey: 'img-a',
  startedAt: '',
  durationMs: 0,
  checks: [],
  tests,
  suite: path.join(dir, 'kmodvm.yaml'),
  seed: 5,
});

t.test('a failed run records its failed tests (a repeated one once), the suite relative to where kmodvm ran, and the seed', async (t) => {
  const d = await repo();
  const x = reproOf(
    c,
    report(d, [
      { name: 'a#1', base: 'a', ok: false, failure: 'transcript', durationMs: 0, checks: [] },
      { name: 'a#2', base: 'a', ok: false, failure: 'transcript', durationMs: 0, checks: [] },
      { name: 'b', ok: true, durationMs: 0, checks: [] },
    ]),
    d,
  );
  t.same(x.tests, ['a']);
  t.equal(x.suite, 'kmodvm.yaml');
  t.match(x.suiteSha256, /^[0-9a-f]{64}$/);
  t.equal(x.seed, 5);
  t.equal(x.memcheck, true);
  t.equal(x.coverage, true, '--coverage is rerun too');
  t.same(reproOf({ ...c, only: ['x*'], shard: '2/3' }, report(d, []), d).tests, ['x*'], 'failed before its tests: the same selection again');
  t.match(reproduceScript(x), /exec \$\{KMODVM:-npx kmodvm\} test --repro "\$run_dir" "\$@"/);
});

t.test('reproduce.sh is executable, and --repro reads back what failed, as the flags it had', async (t) => {
  const d = await repo();
  const run = path.join(d, 'runs', 'r1');
  await import('node:fs/promises').then((f) => f.mkdir(run, { recursive: true }));
  const x = reproOf(c, report(d, [{ name: 'a', ok: false, failure: 'splat', durationMs: 0, checks: [] }]), d);
  await writeRepro(run, x);
  t.equal((await stat(path.join(run, 'reproduce.sh'))).mode & 0o777, 0o755);
  const back = await readRepro(run);
  t.same(back, x);
  const set = reproConfig(back, run, d);
  const { root: _root, only: _only, shard: _shard, ...flags } = c;
  t.same(set, { suite: path.join(d, 'kmodvm.yaml'), only: ['a'], shard: '', ...flags, shuffle: '5' });
  t.same(reproDrift(back, { kmodvm: x.kmodvm, suiteSha256: x.suiteSha256, imageKey: 'img-a' }), [], 'nothing differs');
  await writeFile(path.join(d, 'kmodvm.yaml'), 'modules: [m, n]\n');
  const drift = reproDrift(back, { kmodvm: '9.9.9', suiteSha256: 'other', imageKey: 'img-b' });
  t.equal(drift.length, 3);
  t.match(drift.join('\n'), /kmodvm here is 9\.9\.9/);
  t.match(drift.join('\n'), /suite file kmodvm\.yaml has changed/);
  t.match(drift.join('\n'), /image here \(img-b\) is not the one that failed \(img-a\)/);
  t.match(await readFile(path.join(run, 'reproduce.sh'), 'utf8'), /^#!\/bin\/sh\n/);
});

t.test('--repro on what is not a failed run, or from where its suite is not: bad input, saying what to do', async (t) => {
  const d = await repo();
  const e = await readRepro(d).catch((x: unknown) => x);
  t.ok(e instanceof KmodvmError && e.failure === 'usage', 'a usage error: exit 2');
  t.match((e as Error).message, /not a failed run's directory/);
  await writeFile(path.join(d, 'repro.json'), '{"kmodvm": 1}');
  await t.rejects(readRepro(d), /field `kmodvm`/);
  const x = reproOf(c, report(d, [{ name: 'a', ok: false, durationMs: 0, checks: [] }]), d);
  t.throws(() => reproConfig(x, d, os.tmpdir()), /is not here[\s\S]*/, 'from elsewhere: the path it names is not followed');
  t.throws(() => reproConfig({ ...x, suite: '../etc/kmodvm.yaml' }, d, d), /is not here/, 'no .. out of the current directory');
  t.throws(() => reproConfig({ ...x, suite: path.join(d, 'kmodvm.yaml') }, d, d), /is not here/, 'no absolute path');
  await rm(path.join(d, 'kmodvm.yaml'));
  t.throws(() => reproConfig(x, d, d), /is not here/);
});
