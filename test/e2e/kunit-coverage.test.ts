// KUnit and coverage end to end (#27.1, #27.2), on kmodvm's debug kernel,
// which has CONFIG_KUNIT and CONFIG_GCOV_KERNEL (built first when it is not
// cached). KUnit: test/e2e/fixtures/kunit-suite, a library module and the
// KUnit module testing it, one case failing on a planted overflow. Coverage:
// the netlink demo through kmodvm.coverage.yaml, its article test alone and
// with the error-paths test that sends it malformed datagrams; coverage_min
// (75 % of the lines) between the two. Bad input on the stock kernel.
// Never skipped: a run that cannot happen fails here with its words.
import { cpSync, existsSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-kunit-cov-e2e-'));
const repo = path.join(work, 'clampx');
cpSync(path.join(root, 'test/e2e/fixtures/kunit-suite'), repo, { recursive: true });
const runs = path.join(work, 'runs');

const kmodvm = async (cwd: string, args: string[]) => {
  const r = await execa('node', [path.join(root, 'bin/kmodvm.js'), ...args, '--runs-dir', runs], { cwd, reject: false, timeout: 60 * 60_000 });
  const runDir = /run directory: (\S+)/.exec(r.stderr)?.[1];
  return { ...r, runDir, out: `exited ${r.exitCode}\n${r.stdout}\n${r.stderr.split('\n').slice(-30).join('\n')}` };
};
const report = (runDir: string | undefined) => JSON.parse(readFileSync(path.join(runDir ?? '/nonexistent', 'report.json'), 'utf8'));

t.test("KUnit: each case a subtest point and a JUnit case; the failing one's expectation at its line; exit 17", async (t) => {
  const r = await kmodvm(repo, ['test', '--kernel', 'debian-12-debug']);
  if (!t.equal(r.exitCode, 17, 'exit 17: kunit')) t.comment(r.out);
  t.match(r.stdout, /^ok \d+ test loads/m, "the suite's own test passes: it does not load the KUnit module");
  for (const c of [
    'clampx.clampx_inside',
    'clampx.clampx_below_above',
    'clampx.clampx_bad_range',
    'clampx_mid.clampx_mid_small',
    'clampx_mid.clampx_mid_table',
  ])
    t.match(r.stdout, new RegExp(`^    ok \\d+ kunit ${c.replace('.', '\\.')} - passed`, 'm'), c);
  t.match(r.stdout, /^ {4}ok \d+ kunit clampx\.clampx_not_here - skipped: no hardware clamp on this machine/m);
  t.match(r.stdout, /^ {4}not ok \d+ kunit clampx_mid\.clampx_mid_large - clampx_mid_large: EXPECTATION FAILED at kunit\/clampx_test\.c:31/m);
  const test = report(r.runDir).tests.find((x: { name: string }) => x.name === 'kunit:kunit');
  const bad = test.checks.find((c: { name: string }) => c.name === 'kunit clampx_mid.clampx_mid_large');
  t.same(
    bad.annotations.map((a: { file: string; line: number }) => [a.file, a.line]),
    [['kunit/clampx_test.c', 31]],
  );
  t.match(bad.evidence, /== -2\n/, "the expectation's values");
  const junit = readFileSync(path.join(r.runDir!, 'junit.xml'), 'utf8');
  t.match(junit, /<testcase [^>]*name="kunit:kunit: kunit clampx_mid\.clampx_mid_large"[^>]*>\s*<failure type="kunit"/);
  t.match(junit, /<testcase [^>]*name="kunit:kunit: kunit clampx\.clampx_inside"[^>]*\/>/);
});

t.test('a kernel without KUnit or gcov is bad input before anything boots, naming the kernel that has them', async (t) => {
  const k = await kmodvm(repo, ['test']);
  t.equal(k.exitCode, 2, k.out);
  t.match(k.stderr, /the suite's kunit: dirs \(kunit:kunit\) need a kernel with CONFIG_KUNIT, and 6\.1\.\S+ is built without it/);
  t.match(k.stderr, /--kernel debian-12-debug/);
  const c = await kmodvm(root, ['test', '--coverage']);
  t.equal(c.exitCode, 2, c.out);
  t.match(c.stderr, /--coverage needs a kernel with CONFIG_GCOV_KERNEL/);
});

const suite = ['--suite', path.join(root, 'kmodvm.coverage.yaml'), '--kernel', 'debian-12-debug'];

t.test("coverage: the netlink demo's lines and branches per test and for the suite; the error-paths test raises it", async (t) => {
  const r = await kmodvm(root, ['test', ...suite]);
  if (!t.equal(r.exitCode, 0)) t.comment(r.out);
  const line = (name: string) => {
    const test = report(r.runDir).tests.find((x: { name: string }) => x.name === name);
    return test?.checks.find((c: { name: string }) => c.name === 'coverage')?.message ?? '';
  };
  const pct = (s: string) => Number(/lines \d+\/\d+ \(([\d.]+)%\)/.exec(s)?.[1] ?? Number.NaN);
  t.match(line('netlink'), /^lines \d+\/\d+ \([\d.]+%\), branches \d+\/\d+ \([\d.]+%\)$/);
  const suiteLine = report(r.runDir).checks.find((c: { name: string }) => c.name === 'coverage')?.message ?? '';
  t.match(suiteLine, /over 2 tests$/);
  t.ok(pct(suiteLine) > pct(line('netlink')), `the error paths add lines: ${line('netlink')} -> ${suiteLine}`);
  t.ok(pct(suiteLine) >= 75, 'the whole suite meets coverage_min');
  const cov = path.join(r.runDir!, 'coverage');
  t.match(readFileSync(path.join(cov, 'lcov.info'), 'utf8'), /^TN:\nSF:kernel-module\/netlink_simple_intf\.c\n/);
  t.ok(existsSync(path.join(cov, 'html/kernel-module/netlink_simple_intf.c.gcov.html')), 'the HTML report, per source');
  t.match(readFileSync(path.join(cov, 'cobertura.xml'), 'utf8'), /<class name="[^"]*" filename="kernel-module\/netlink_simple_intf\.c"/);
  t.match(r.stdout, /^ok \d+ coverage - lines \d+\/80/m, 'one summary line in TAP');
});

t.test('coverage_min: the article test alone is under 75 % of the lines, exit 18 with what fell short', async (t) => {
  const r = await kmodvm(root, ['test', ...suite, '--only', 'netlink']);
  if (!t.equal(r.exitCode, 18, 'exit 18: coverage')) t.comment(r.out);
  t.match(r.stderr, /failed: coverage: lines \d+\/80 \([\d.]+%\), branches .* below coverage_min \(lines [\d.]+% < 75%\)/);
});
