// The developer loop on a real instance: vm:up, vm:status, vm:ssh (exit
// codes, quoting, stdin), vm:test --reuse twice (the second run has no
// first-load lines), vm:logs, vm:down. A private instance name and cache of
// instances keep it apart from a developer's own VM.
import { appendFileSync, cpSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { loadConfig } from '../../scripts/lib/core/flags.ts';
import { demoAppAndTranscript } from '../helpers/demo.ts';

const root = new URL('../../', import.meta.url).pathname;
const tsx = path.join(root, 'node_modules/.bin/tsx');
const name = `e2e-${process.pid}`;
const cli = (verb: string, args: string[], input?: string) =>
  execa(tsx, [path.join(root, 'scripts/kmodvm.ts'), verb, ...args], { reject: false, cwd: root, timeout: 20 * 60_000, input });
const vmTest = (args: string[]) => execa(tsx, [path.join(root, 'scripts/kmodvm.ts'), 'test', ...args], { reject: false, cwd: root, timeout: 20 * 60_000 });

t.teardown(async () => {
  await cli('down', ['--name', name]);
});
const runDirOf = (stderr: string): string => /run directory: (\S+)/.exec(stderr)?.[1] ?? '';

t.test('vm:up brings an instance up once', async (t) => {
  const up = await cli('up', ['--name', name]);
  if (up.exitCode !== 0) t.comment(up.stderr.split('\n').slice(-15).join('\n'));
  t.equal(up.exitCode, 0, 'vm:up exits 0');
  t.match(up.stderr, new RegExp(`instance ${name}: up in [\\d.]+ s \\((resumed|saved, then resumed) from a snapshot`));
  t.match(up.stderr, /get in: +npx kmodvm ssh --name/);
  const again = await cli('up', ['--name', name]);
  t.equal(again.exitCode, 0);
  t.match(again.stderr, /is already up .*nothing to do/);
  const st = await cli('status', []);
  t.match(st.stdout, new RegExp(`^${name} +\\d+ +\\d+ +\\S+ +(tcg|kvm) +[0-9a-f]{16} +6\\.1\\.`, 'm'));
});

t.test('vm:ssh runs one command with its argv intact, its exit code, and stdin', async (t) => {
  const r = await cli('ssh', ['--name', name, 'printf', '%s|', 'a b', "it's", '$HOME']);
  t.equal(r.exitCode, 0);
  t.equal(r.stdout, "a b|it's|$HOME|", 'each argument arrives as one, unexpanded');
  t.equal((await cli('ssh', ['--name', name, 'sh', '-c', 'exit 7'])).exitCode, 7);
  const cat = await cli('ssh', ['--name', name, 'wc', '-c'], 'x'.repeat(100_000));
  t.equal(cat.stdout.trim(), '100000', 'stdin is forwarded whole');
});

t.test('vm:test --reuse runs the steps on the instance, twice', async (t) => {
  const first = await vmTest(['--reuse', name]);
  if (first.exitCode !== 0) t.comment(first.stdout);
  t.equal(first.exitCode, 0, 'the first --reuse run passes');
  const second = await vmTest(['--reuse', name]);
  if (second.exitCode !== 0) t.comment(second.stdout);
  t.equal(second.exitCode, 0, 'the second --reuse run passes');
  t.match(second.stdout, /^    ok \d+ transcript - pid \d+ \(an out-of-tree module was loaded earlier this boot: first-load lines not expected\)/m);
});

t.test("setup: runs once per guest on a kept instance (#29.18); a failing setup line is its own class, exit 15, not the app's", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-e2e-setup-'));
  cpSync(path.join(root, 'test/e2e/fixtures/flaky-suite'), dir, { recursive: true });
  const file = path.join(dir, 'kmodvm.yaml');
  const suite = readFileSync(file, 'utf8');
  // mkdir fails when the directory is there: a second run of setup on this guest would fail.
  writeFileSync(file, suite.replace('tests:\n', `setup:\n  - mkdir /root/made-once-${process.pid}\ntests:\n`));
  const once = () => vmTest(['--reuse', name, '--suite', file, '--only', 'steady']);
  const first = await once();
  if (first.exitCode !== 0) t.comment(first.stdout);
  t.equal(first.exitCode, 0, 'the first run sets up and passes');
  t.match(first.stdout, /^ok \d+ setup\[0\] - mkdir/m);
  const second = await once();
  if (second.exitCode !== 0) t.comment(second.stdout);
  t.equal(second.exitCode, 0, 'the second run on the same guest passes: setup is not run again');
  t.match(second.stdout, /^ok \d+ setup - already run on this guest/m);
  writeFileSync(file, suite.replace('tests:\n', 'setup:\n  - echo preparing; exit 3\ntests:\n'));
  const bad = await once();
  t.equal(bad.exitCode, 15, 'a failing setup line: exit 15 (suite-setup)');
  t.match(bad.stdout, /^not ok \d+ setup\[0\]/m);
  t.match(bad.stdout, /preparing/, 'with its output');
});

t.test("an edit to a .c file rebuilds by replaying kbuild's recorded commands; a broken edit is still a build failure", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-e2e-replay-'));
  cpSync(path.join(root, 'kernel-module'), dir, { recursive: true, filter: (src) => !/\.(o|ko|cmd|mod)$/.test(src) });
  const src = path.join(dir, 'netlink_simple_intf.c');
  // The copy of the module with the demo's app and transcript, on the instance.
  const onCopy = () => vmTest(['--reuse', name, '--module-dir', dir, ...demoAppAndTranscript]);
  const first = await onCopy();
  t.equal(first.exitCode, 0, 'a run on the copy passes');
  appendFileSync(src, '/* an edit */\n');
  const edited = await onCopy();
  if (edited.exitCode !== 0) t.comment(edited.stdout);
  t.equal(edited.exitCode, 0, 'the module rebuilt from the replay loads and passes the transcript');
  // A comment leaves the .mod.c alone (modpost's srcversion skips comments): its .mod.o is up to date, as make would find.
  t.match(
    readFileSync(path.join(runDirOf(edited.stderr), 'host-build.log'), 'utf8'),
    /^kbuild's recorded commands replayed \(4, 1 up to date\); make not run/m,
  );
  // A code edit gives the module a new srcversion (Debian's MODULE_SRCVERSION_ALL): the .mod.o is the old one with that patched in.
  appendFileSync(src, 'int kmodvm_e2e_edit = 1;\n');
  const coded = await onCopy();
  if (coded.exitCode !== 0) t.comment(coded.stdout);
  t.equal(coded.exitCode, 0, 'the module with the patched srcversion loads and passes the transcript');
  t.match(
    readFileSync(path.join(runDirOf(coded.stderr), 'host-build.log'), 'utf8'),
    /^kbuild's recorded commands replayed \(4, 1 patched: only its srcversion changed\); make not run/m,
  );
  const { config } = loadConfig([], process.env, root);
  const modC = readFileSync(path.join(config.cacheDir, 'instances', name, 'build/kernel-module/netlink_simple_intf.mod.c'), 'utf8');
  const want = /MODULE_INFO\(srcversion, "([0-9A-F]+)"\)/.exec(modC)?.[1];
  const got = await cli('ssh', ['--name', name, 'modinfo', '-F', 'srcversion', '/root/kmodvm/kernel-module/netlink_simple_intf.ko']);
  t.equal(got.stdout.trim(), want, "the guest's module carries the srcversion modpost computed for the edit");
  appendFileSync(src, 'int broken(void) { return nope; }\n');
  const broken = await onCopy();
  t.equal(broken.exitCode, 10, 'exit 10: build');
  t.match(broken.stderr, new RegExp(`${src.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}:\\d+:\\d+: error: .nope. undeclared`), 'the error names the host file');
});

t.test('vm:watch: a save runs the loop and prints the verdict; a broken save prints the compiler error', async (t) => {
  const mod = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-e2e-watch-mod-'));
  const app = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-e2e-watch-app-'));
  cpSync(path.join(root, 'kernel-module'), mod, { recursive: true, filter: (src) => !/\.(o|ko|cmd|mod)$/.test(src) });
  cpSync(path.join(root, 'userapp'), app, { recursive: true, filter: (src) => !/netlink_userapp$/.test(src) });
  const w = execa(
    tsx,
    [
      path.join(root, 'scripts/kmodvm.ts'),
      'watch',
      '--name',
      name,
      '--module-dir',
      mod,
      '--app-dir',
      app,
      '--transcript',
      path.join(root, 'test/expected/netlink.transcript'),
    ],
    { reject: false, cwd: root, all: true, timeout: 20 * 60_000 },
  );
  let text = '';
  w.all?.on('data', (d: Buffer) => {
    text += d.toString();
  });
  const waitFor = async (re: RegExp, ms: number): Promise<boolean> => {
    const deadline = Date.now() + ms;
    while (!re.test(text)) {
      if (Date.now() > deadline || w.exitCode !== null) return false;
      await new Promise((r) => setTimeout(r, 100));
    }
    return true;
  };
  const count = (re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;
  t.ok(await waitFor(/watch: watching/, 5 * 60_000), 'watching, after a first run');
  t.equal(count(/PASS · save to verdict/), 1, 'the first run passed');
  appendFileSync(path.join(mod, 'netlink_simple_intf.c'), 'int kmodvm_e2e_watch_edit = 1;\n');
  t.ok(await waitFor(/(PASS · save to verdict[\s\S]*){2}/, 3 * 60_000), 'a code edit: a second run, passed');
  t.match(text, /changed: \S*netlink_simple_intf\.c/);
  appendFileSync(path.join(mod, 'netlink_simple_intf.c'), 'int broken(void) { return nope; }\n');
  t.ok(await waitFor(/FAIL \(build\)/, 3 * 60_000), 'a broken edit: a build failure');
  t.match(text, /netlink_simple_intf\.c:\d+:\d+: error: .nope. undeclared/, 'with the compiler error at the host path');
  w.kill('SIGINT');
  const end = await w;
  if (end.exitCode !== 0) t.comment(text.split('\n').slice(-20).join('\n'));
  t.equal(end.exitCode, 0, 'Ctrl-C stops watching; the instance stays up');
  t.equal((await cli('ssh', ['--name', name, 'true'])).exitCode, 0, 'the instance is still up');
});

t.test('vm:logs prints the serial console', async (t) => {
  const r = await cli('logs', ['--name', name]);
  t.equal(r.exitCode, 0);
  t.match(r.stdout, /kmodvm-init: resumed from a snapshot at/);
});

t.test('vm:down powers it off and forgets it', async (t) => {
  const r = await cli('down', ['--name', name]);
  t.equal(r.exitCode, 0);
  t.match(r.stderr, /powered off|killed/);
  const st = await cli('status', []);
  t.notMatch(st.stdout, new RegExp(`^${name} `, 'm'));
  const ssh = await cli('ssh', ['--name', name, 'true']);
  t.equal(ssh.exitCode, 2, 'no instance of that name: bad input (usage), not a VM failure');
  t.match(ssh.stderr, /no running instance named .*\nnext: start it: npx kmodvm up --name/);
});
