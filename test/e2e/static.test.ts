// The static checks end to end (#27.3), on test/e2e/fixtures/static-suite:
// a module with one planted finding of each kind (W=1, sparse, checkpatch),
// which builds, loads and passes its test. kmodvm check alone, and as a
// step of vm:test under static: strict and warn. checkpatch comes from the
// debug kernel's linux-source tree, built first when it is not cached.
// Never skipped: a check that cannot run fails here with its words.
import { cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-static-e2e-'));
const repo = path.join(work, 'lint');
cpSync(path.join(root, 'test/e2e/fixtures/static-suite'), repo, { recursive: true });
const src = path.join(repo, 'lint/lint_me.c');

const kmodvm = async (args: string[]) => {
  const r = await execa('node', [path.join(root, 'bin/kmodvm.js'), ...args], { cwd: repo, reject: false, timeout: 60 * 60_000 });
  const runDir = /run directory: (\S+)/.exec(r.stderr)?.[1];
  return { ...r, runDir, out: `exited ${r.exitCode}\n${r.stdout}\n${r.stderr.split('\n').slice(-30).join('\n')}` };
};

const FINDINGS = [
  `${src}:13:5: W=1 warning: no previous prototype for ‘lint_me_count’ [-Wmissing-prototypes]`,
  `${src}:13:5: sparse warning: symbol 'lint_me_count' was not declared. Should it be static?`,
  `${src}:20:18: sparse warning: incorrect type in initializer (different address spaces); expected int *p; got void [noderef] __user *ubuf`,
  `${src}:27: checkpatch error: space required before the open parenthesis '('`,
];

t.test("kmodvm check: each finding at its line in the user's file, and exit 16 under static: strict", async (t) => {
  const r = await kmodvm(['check']);
  if (!t.equal(r.exitCode, 16, 'exit 16: static')) t.comment(r.out);
  t.same(r.stdout.trim().split('\n').slice(0, 4), FINDINGS);
  t.match(r.stderr, /check: FAIL \(static\): 4 findings: W=1 1, sparse 2, checkpatch 1/);
});

t.test('vm:test with static: strict: the module loads and its test passes, the static check fails the run with its annotations', async (t) => {
  const r = await kmodvm(['test']);
  if (!t.equal(r.exitCode, 16)) t.comment(r.out);
  t.match(r.stdout, /^not ok \d+ static - 4 findings: W=1 1, sparse 2, checkpatch 1/m);
  t.match(r.stdout, /^ok \d+ test loaded /m, 'the test itself passed');
  const report = JSON.parse(readFileSync(path.join(r.runDir!, 'report.json'), 'utf8'));
  const check = report.checks.find((c: { name: string }) => c.name === 'static');
  t.same(
    check.annotations.map((a: { file: string; line: number }) => `${path.basename(a.file)}:${a.line}`),
    ['lint_me.c:13', 'lint_me.c:13', 'lint_me.c:20', 'lint_me.c:27'],
  );
});

t.test('static: warn reports the findings and passes; a bad value is bad input', async (t) => {
  const file = path.join(repo, 'kmodvm.yaml');
  const yaml = readFileSync(file, 'utf8');
  writeFileSync(file, yaml.replace('\nstatic: strict\n', '\nstatic: warn\n'));
  const r = await kmodvm(['test']);
  if (!t.equal(r.exitCode, 0)) t.comment(r.out);
  t.match(r.stdout, /^ok \d+ static - 4 findings: W=1 1, sparse 2, checkpatch 1 \(static: warn reports them\)/m);
  const strict = await kmodvm(['check', '--strict']);
  t.equal(strict.exitCode, 16, '--strict fails whatever the suite says');
  writeFileSync(file, yaml.replace('\nstatic: strict\n', '\nstatic: sometimes\n'));
  const bad = await kmodvm(['check']);
  t.equal(bad.exitCode, 2);
  t.match(bad.stderr, /kmodvm\.yaml:\d+: static: /);
});
