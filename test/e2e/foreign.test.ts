// kmodvm as a stranger meets it: packed with npm pack, installed into a
// module repository it did not write (test/e2e/fixtures/foreign-suite,
// copied outside this checkout), and run there as `npx kmodvm test`. Two
// modules in two dirs (one uses the other's exported symbol), a multi-file
// module, a header shared by module and app, a shell test, parameters.
// Never skipped: a VM that cannot run fails these tests with the tool's words.
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-foreign-'));
const repo = path.join(work, 'bebop');
const explain = (r: { exitCode?: number; stdout: string; stderr: string }): string =>
  `exited ${r.exitCode}\n--- stdout\n${r.stdout}\n--- stderr (tail)\n${r.stderr.split('\n').slice(-40).join('\n')}`;

const kmodvm = async (args: string[]) => {
  const r = await execa('npx', ['--no-install', 'kmodvm', ...args], { cwd: repo, reject: false, timeout: 30 * 60_000, env: { npm_config_yes: 'false' } });
  return { ...r, runDir: /run directory: (\S+)/.exec(r.stderr)?.[1] };
};
const subtest = (tap: string, name: string): string => {
  const at = tap.indexOf(`# Subtest: ${name}\n`);
  return at < 0 ? '' : tap.slice(at, tap.indexOf('\n', tap.indexOf(` test ${name} `, at)) + 1);
};

t.before(async () => {
  const pack = await execa('npm', ['pack', '--pack-destination', work], { cwd: root });
  const tarball = path.join(work, pack.stdout.trim().split('\n').at(-1)!);
  cpSync(path.join(root, 'test/e2e/fixtures/foreign-suite'), repo, { recursive: true });
  writeFileSync(path.join(repo, 'package.json'), JSON.stringify({ name: 'bebop', private: true }, null, 2));
  mkdirSync(path.join(repo, 'scratch'));
  writeFileSync(path.join(repo, 'scratch/notes.c'), 'not part of the suite: .gitignore says /scratch/\n');
  await execa('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], { cwd: repo, timeout: 15 * 60_000 });
});

t.test('npx kmodvm test passes the foreign suite: module names from kbuild, one VM for four tests', async (t) => {
  const r = await kmodvm(['test']);
  if (r.exitCode !== 0) t.comment(explain(r));
  t.equal(r.exitCode, 0, 'exit 0');
  t.comment(r.stdout);
  t.match(r.stdout, /^ok \d+ build-module:driver - on the host \(bebop_core\)/m, 'a multi-file module, named by its modules.order');
  t.match(r.stdout, /^ok \d+ build-module:consumer - on the host \(bebop_user\)/m, 'the dash in bebop-user.c is an underscore, as kbuild names it');
  t.match(r.stdout, /^ok \d+ setup\[0\] - test -c \/dev\/null/m);
  for (const name of ['ctl-read', 'param-override', 'usage-exit', 'shell-script'])
    t.match(r.stdout, new RegExp(`^ok \\d+ test ${name} `, 'm'), `test ${name} passed`);
  const ctl = subtest(r.stdout, 'ctl-read');
  t.match(
    ctl,
    /    ok 1 insmod bebop_core .*\n    ok 2 insmod bebop_user .*\n    ok 3 run - exited 0 .*\n    ok 4 rmmod bebop_user .*\n    ok 5 rmmod bebop_core /,
    'loaded in order, unloaded in reverse',
  );
  t.match(subtest(r.stdout, 'usage-exit'), /ok 3 run - exited 2 /, 'the expected exit code');
  t.ok(r.runDir?.startsWith(path.join(repo, 'runs')), 'the run directory is in the module repository');
  const report = JSON.parse(readFileSync(path.join(r.runDir!, 'report.json'), 'utf8'));
  t.equal(report.suite, path.join(repo, 'kmodvm.yaml'));
  t.same(
    report.tests.map((x: { name: string }) => x.name),
    ['ctl-read', 'param-override', 'usage-exit', 'shell-script'],
  );
  t.match(report.tests[0].captures.pid, /^\d+$/, "the app's PID is the one the kernel logged");
  t.match(readFileSync(path.join(r.runDir!, 'junit.xml'), 'utf8'), /<testcase classname="kmodvm.vm:test" name="test param-override"/);
  t.match(readFileSync(path.join(r.runDir!, 'tests/shell-script/stdout'), 'utf8'), /nul\0here\r\nlast line without a newline$/, 'the raw output is kept');
  const uploaded = readFileSync(path.join(r.runDir!, 'steps', readdirSync(path.join(r.runDir!, 'steps')).find((f) => f.endsWith('setup-0-.json'))!), 'utf8');
  t.ok(uploaded, 'each step has its record');
  const tree = /^tree: (\S+)$/m.exec(readFileSync(path.join(r.runDir!, 'host-build.log'), 'utf8'))?.[1];
  t.ok(tree && existsSync(path.join(tree, 'driver/Makefile')), 'the host build tree holds the suite');
  t.notOk(existsSync(path.join(tree!, 'node_modules')), 'node_modules does not travel');
  t.notOk(existsSync(path.join(tree!, 'scratch')), 'nor what .gitignore ignores');
  const judged = await kmodvm(['judge', r.runDir!]);
  t.equal(judged.exitCode, 0, 'kmodvm judge: the same verdict, without a VM');
  const against = await kmodvm(['judge', r.runDir!, '--transcript', path.join(repo, 'expected/param-override.transcript')]);
  t.equal(against.exitCode, 1, 'against another transcript: the transcript class');
});

t.test('a shard runs its share; a broken transcript fails that test alone; a splat gives the next test a fresh guest', async (t) => {
  const shard = await kmodvm(['test', '--shard', '2/2']);
  t.equal(shard.exitCode, 0, explain(shard));
  t.match(shard.stdout, /^ok \d+ test param-override /m);
  t.match(shard.stdout, /^ok \d+ test shell-script /m);
  t.notMatch(shard.stdout, /test ctl-read|test usage-exit/);

  const tr = path.join(repo, 'expected/param-override.transcript');
  const good = readFileSync(tr, 'utf8');
  writeFileSync(tr, good.replace('rocksteady', 'leonardo'));
  const broken = await kmodvm(['test']);
  writeFileSync(tr, good);
  t.equal(broken.exitCode, 1, 'the transcript class');
  t.match(broken.stdout, /^not ok \d+ test param-override - transcript /m);
  t.match(broken.stdout, /^ok \d+ test usage-exit /m, 'the next test still ran');
  t.match(broken.stdout, /expected \(.*param-override\.transcript:\d+\): .*leonardo/);

  const suite = path.join(repo, 'kmodvm.yaml');
  const yaml = readFileSync(suite, 'utf8');
  writeFileSync(suite, yaml.replace('tests:\n', 'tests:\n  - name: warns\n    run: "true"\n    params:\n      bebop_core: warn=1\n'));
  const splat = await kmodvm(['test', '--only', 'warns', '--only', 'ctl-read']);
  writeFileSync(suite, yaml);
  t.equal(splat.exitCode, 13, `the splat class\n${explain(splat)}`);
  t.match(subtest(splat.stdout, 'warns'), /not ok \d+ no-splat - [\w-]+: .*WARNING: CPU: \d+ PID: \d+ at /);
  t.match(splat.stdout, /^ok \d+ test ctl-read - on a fresh guest \(/m, 'the test after the splat passed on a fresh guest');
});

t.test("load: once and kernel_args: the modules loaded around all the tests, the guest booted with the suite's command line", async (t) => {
  writeFileSync(
    path.join(repo, 'once.yaml'),
    [
      'modules:',
      '  - dir: driver',
      '  - dir: consumer',
      'apps:',
      '  - dir: tools',
      'load: once',
      'kernel_args: kmodvm.e2e=once',
      'tests:',
      '  - name: loaded',
      '    run: test -c /dev/bebop && grep -qw kmodvm.e2e=once /proc/cmdline',
      '  - name: still-loaded',
      '    run: ./tools/bebopctl',
      '',
    ].join('\n'),
  );
  const r = await kmodvm(['test', '--suite', 'once.yaml']);
  if (r.exitCode !== 0) t.comment(explain(r));
  t.equal(r.exitCode, 0);
  t.match(r.stdout, /^ok \d+ insmod bebop_core .*\nok \d+ insmod bebop_user .*\n# Subtest: loaded\n/m, 'loaded once, before the first test');
  t.match(r.stdout, /^ok \d+ test still-loaded .*\nok \d+ rmmod bebop_user .*\nok \d+ rmmod bebop_core /m, 'unloaded once, after the last, in reverse');
  t.notMatch(subtest(r.stdout, 'loaded'), /insmod/);
});

t.test("--build guest: both module dirs made in the guest, the second with the first's symbols", async (t) => {
  const r = await kmodvm(['test', '--build', 'guest', '--only', 'ctl-read']);
  if (r.exitCode !== 0) t.comment(explain(r));
  t.equal(r.exitCode, 0);
  t.match(r.stdout, /^ok \d+ build-module:driver - /m);
  t.match(r.stdout, /^ok \d+ build-module:consumer - /m);
  t.match(r.stdout, /^ok \d+ build-app - /m);
  t.match(r.stdout, /^ok \d+ test ctl-read /m);
});

t.test('bad input exits 2 before anything boots, naming the file, the line and the field', async (t) => {
  const suite = path.join(repo, 'kmodvm.yaml');
  const yaml = readFileSync(suite, 'utf8');
  writeFileSync(suite, yaml.replace('    exit_code: 2\n', '    exit_code: 2\n    retries: 3\n'));
  const r = await kmodvm(['test']);
  writeFileSync(suite, yaml);
  t.equal(r.exitCode, 2);
  t.match(r.stderr, new RegExp(`error \\[usage\\]: ${suite.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+: tests\\[2\\]\\.retries: unknown field`));
  t.notMatch(r.stderr, /qemu-system/, 'nothing booted');
  const none = await kmodvm(['test', '--only', 'nothing-by-this-name']);
  t.equal(none.exitCode, 2);
  t.match(none.stderr, /the tests are: ctl-read, param-override, usage-exit, shell-script/);
});

t.test('--update writes a missing transcript from the run, with the PID as a placeholder', async (t) => {
  const tr = path.join(repo, 'expected/ctl-read.transcript');
  const kept = readFileSync(tr, 'utf8');
  rmSync(tr);
  const without = await kmodvm(['test', '--only', 'ctl-read']);
  t.equal(without.exitCode, 2, 'a missing transcript is bad input');
  t.match(without.stderr, /run once with --update to write it/);
  const r = await kmodvm(['test', '--only', 'ctl-read', '--update']);
  t.equal(r.exitCode, 0, explain(r));
  t.match(r.stderr, /update: wrote expected\/ctl-read\.transcript\n[\s\S]*\+bebop_core: ioctl from pid \{\{pid\}\}/);
  const written = readFileSync(tr, 'utf8');
  t.match(written, /\[app\]\npid \{\{pid:int\}\}: value 43 name bebop\n$/);
  const again = await kmodvm(['test', '--only', 'ctl-read']);
  t.equal(again.exitCode, 0, 'the written transcript passes the next run');
  writeFileSync(tr, kept);
});

t.test('the code under test forges no verdict and reaches no host file through a link (#24)', async (t) => {
  const secret = path.join(mkdtempSync(path.join(os.tmpdir(), 'kmodvm-foreign-home-')), 'id_ed25519');
  writeFileSync(secret, 'PRIVATE KEY kmodvm-e2e\n', { mode: 0o600 });
  const { symlinkSync } = await import('node:fs');
  symlinkSync(secret, path.join(repo, 'notes.txt'));
  // What a test would try on the old kept shell: read every kept shell's nonce from /proc/PID/cmdline and print the frame that ends a command with status 0.
  const forge = [
    'for p in /proc/[0-9]*; do',
    "  n=$(tr '\\000' ' ' < $p/cmdline 2>/dev/null | sed -n 's/.*kmodvm-kept-shell \\([0-9a-f][0-9a-f]*\\).*/\\1/p')",
    '  [ -n "$n" ] && printf \'\\036%s 0\\n\' "$n" && printf \'\\036%s\\n\' "$n" >&2',
    'done',
    'cat notes.txt',
    'exit 9',
  ].join('\n');
  writeFileSync(
    path.join(repo, 'forge.yaml'),
    ['modules:', '  - dir: driver', 'tests:', '  - name: forge', `    run: ${JSON.stringify(forge)}`, ''].join('\n'),
  );
  const r = await kmodvm(['test', '--suite', 'forge.yaml']);
  rmSync(path.join(repo, 'notes.txt'));
  t.equal(r.exitCode, 12, `the app class: its own exit status, not a forged 0\n${explain(r)}`);
  t.match(r.stdout, /not ok \d+ run - .*exited 9/);
  t.match(r.stderr, /symlinks left out of the upload and the reports: notes\.txt -> \S+id_ed25519 \(it points outside the suite\)/);
  const everything = [r.stdout, r.stderr, ...(r.runDir ? readdirSync(r.runDir, { recursive: true }).map(String) : [])].join('\n');
  t.notMatch(everything, /PRIVATE KEY/, 'the key is in no output');
  if (r.runDir)
    for (const f of ['report.json', 'report.tap', 'junit.xml']) t.notMatch(readFileSync(path.join(r.runDir, f), 'utf8'), /PRIVATE KEY/, `nor in ${f}`);
});
