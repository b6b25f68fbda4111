// #26.3 end to end: a crash dump. test/e2e/fixtures/panic-suite's module
// oopses in crashme_deref() when its test writes 1 to /proc/crashme; with
// --dump the oops is a panic, QEMU pauses the guest and kmodvm writes its
// memory into the run directory; the next test gets a fresh guest and
// passes. kmodvm crash opens the dump in crash, with the stock kernel's
// symbols from Debian's -dbg package (fetched once, --kernel-symbols) and
// the module's, and the backtrace has the module's function. A suite's own
// dump: true arms the run too, and a run with no panic says it wrote none.
// Bad input exits 2. Never skipped.
import { cpSync, existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-dump-'));
const repo = path.join(work, 'repo');
cpSync(path.join(root, 'test/e2e/fixtures/panic-suite'), repo, { recursive: true });
const bin = path.join(root, 'bin/kmodvm.js');

async function kmodvm(args: string[], o: { input?: string } = {}) {
  const r = await execa('node', [bin, ...args], { cwd: repo, reject: false, timeout: 20 * 60_000, input: o.input ?? '' });
  const runDir = /run directory: (\S+)/.exec(r.stderr)?.[1];
  const report = runDir && existsSync(path.join(runDir, 'report.json')) ? JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8')) : undefined;
  return { ...r, runDir, report, out: `${r.stdout}\n${r.stderr.split('\n').slice(-40).join('\n')}` };
}

let dumped: string | undefined;

t.test('--dump: the oops leaves the guest memory in RUNDIR/dump; the test fails as a splat; the next test passes on a fresh guest', async (t) => {
  const r = await kmodvm(['test', '--dump', '--runs-dir', path.join(work, 'runs')]);
  t.equal(r.exitCode, 13, r.out);
  const [oops, fine] = r.report.tests;
  const step = oops.checks.find((c: { name: string }) => c.name === 'dump');
  t.match(step, { ok: true, message: /^the guest panicked; its memory is in dump\/vmcore \(\d+ MiB, kdump-zlib\); open it with: npx kmodvm crash \S+$/ });
  t.match(step.evidence, /BUG: kernel NULL pointer dereference[\s\S]*RIP: 0010:crashme_deref\+/);
  t.match(
    oops.checks.find((c: { name: string }) => c.name === 'no-splat'),
    { ok: false },
  );
  t.match(fine, { ok: true, freshGuest: /BUG: kernel NULL pointer dereference/ });
  const dump = path.join(r.runDir!, 'dump');
  const rec = JSON.parse(readFileSync(path.join(dump, 'dump.json'), 'utf8'));
  t.match(rec, {
    format: 'kmodvm-dump/1',
    test: 'oops',
    vmcoreFormat: 'kdump-zlib',
    vmcoreinfo: true,
    modules: [{ name: 'crashme', ko: 'modules/crashme.ko' }],
  });
  t.equal(statSync(path.join(dump, 'vmcore')).size, rec.bytes);
  t.ok(rec.bytes > 10e6 && rec.bytes < 1024 * 1024 * 1024, `compressed: ${rec.bytes} bytes of a 1 GiB guest`);
  t.equal(statSync(path.join(dump, 'vmcore')).mode & 0o777, 0o600);
  dumped = r.runDir;
});

t.test(
  "kmodvm crash opens it with the kernel's symbols (--kernel-symbols) and the module's: crashme_deref is in the backtrace, at its source line",
  async (t) => {
    t.ok(dumped, 'the run above left a dump');
    const script = path.join(work, 'cmds.crash');
    writeFileSync(script, 'sym crashme_deref\n');
    const r = await kmodvm(['crash', dumped!, '--batch', script, '--kernel-symbols']);
    t.equal(r.exitCode, 0, r.out);
    t.match(r.stderr, /the panic, as the console showed it:\nbug in serial\.log/);
    t.match(r.stdout, /crashme +\w+ +\d+ +\S+\/dump\/modules\/crashme\.ko/, "the module's symbols are in");
    t.match(r.stdout, /PID: \d+ +TASK: \w+ +CPU: \d +COMMAND: "sh"\n #0 \[\w+\] panic at \w+/, 'bt of the panicking task');
    t.match(r.stdout, /\[exception RIP: crashme_deref\+\d+\]/, "the module's function is where it oopsed");
    t.match(r.stdout, /#\d+ \[\w+\] crashme_write at \w+ \[crashme\]/, 'and its caller is a module frame');
    t.match(r.stdout, /\(t\) crashme_deref \[crashme\] \S*crashme\.c: \d+/, "the user's command: its source line");
    t.ok(existsSync(path.join(dumped!, 'dump', 'crash.log')));
  },
);

t.test("the suite's dump: true arms the run too; a run with no panic says it wrote no dump", async (t) => {
  writeFileSync(path.join(repo, 'kmodvm.yaml'), `${readFileSync(path.join(repo, 'kmodvm.yaml'), 'utf8')}dump: true\n`);
  const r = await kmodvm(['test', '--only', 'fine', '--runs-dir', path.join(work, 'runs')]);
  t.equal(r.exitCode, 0, r.out);
  t.match(r.stderr, /dump: armed/);
  t.match(r.stderr, /dump: no guest panicked or oopsed, so no dump was written/);
  t.notOk(existsSync(path.join(r.runDir!, 'dump')));
});

t.test('bad input exits 2 and says what to do', async (t) => {
  const none = await kmodvm(['crash', path.join(work, 'runs')]);
  t.equal(none.exitCode, 2);
  t.match(none.stderr, /has no dump and is not a run directory[\s\S]*--dump/);
  const noTty = await kmodvm(['crash', dumped!]);
  t.equal(noTty.exitCode, 2);
  t.match(noTty.stderr, /needs a terminal, or --batch FILE/);
  const two = await kmodvm(['crash']);
  t.equal(two.exitCode, 2);
  t.match(two.stderr, /crash takes one run directory/);
});
