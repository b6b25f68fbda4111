// The kept shell's guest script, run by a real local sh (dash on Debian, as in
// the guest) over a child's pipes in place of an ssh2 channel.
import { spawn } from 'node:child_process';
import t from 'tap';
import { Framer, KEPT_SHELL, KeptShells, keptShellArgv, type ShellChannel, statusToEnd } from '../../../scripts/lib/guest/kept-shell.ts';

function localShells(): { shells: KeptShells; opened: () => number } {
  let n = 0;
  const shells = new KeptShells(async (argv) => {
    n++;
    const child = spawn(argv[0], argv.slice(1), { stdio: ['pipe', 'pipe', 'pipe'] });
    const ch: ShellChannel = {
      write: (s) => child.stdin.write(s),
      on: (ev: 'data' | 'close', f: (d: Buffer) => void) => (ev === 'data' ? child.stdout.on('data', f) : child.on('close', () => (f as () => void)())),
      stderr: child.stderr,
      signal: (name) => child.kill(`SIG${name}` as NodeJS.Signals),
      close: () => child.stdin.end(),
    };
    return ch;
  });
  return { shells, opened: () => n };
}

t.test('each command gets its own stdout, stderr and exit code', async (t) => {
  const { shells } = localShells();
  t.teardown(() => shells.closeAll());
  const a = await shells.run("printf 'out\\n'; printf 'err\\n' >&2; exit 3", 5000);
  t.same([a.stdout, a.stderr, a.exitCode, a.signal, a.reason, a.timedOut], ['out\n', 'err\n', 3, undefined, 'exited 3', false]);
  const b = await shells.run("printf 'no newline at the end'", 5000);
  t.equal(b.stdout, 'no newline at the end', 'output without a final newline stays as it is');
  t.equal(b.stderr, '', 'nothing of the last command is left over');
  t.equal(b.exitCode, 0);
  const c = await shells.run("printf 'ünïcødé\\n%.0s' 1 2 3", 5000);
  t.equal(c.stdout, 'ünïcødé\n'.repeat(3));
  t.equal(c.command, "printf 'ünïcødé\\n%.0s' 1 2 3", 'the record names the command line');
});

t.test('a command killed by a signal reads as an exec channel reports it', async (t) => {
  const { shells } = localShells();
  t.teardown(() => shells.closeAll());
  const r = await shells.run("sh -c 'kill -SEGV $$'", 5000);
  t.equal(r.signal, 'SIGSEGV');
  t.equal(r.exitCode, undefined);
  t.equal(r.reason, 'killed by SIGSEGV');
});

t.test('commands are isolated: their own subshell, stdin from /dev/null', async (t) => {
  const { shells, opened } = localShells();
  t.teardown(() => shells.closeAll());
  const home = (await shells.run('pwd', 5000)).stdout;
  await shells.run('cd /tmp && X=set', 5000);
  t.equal((await shells.run('pwd', 5000)).stdout, home, 'a cd does not outlive its command');
  // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell variable, on purpose
  t.equal((await shells.run('echo ${X-unset}', 5000)).stdout, 'unset\n', 'nor does a variable');
  const cat = await shells.run('cat', 5000);
  t.same([cat.stdout, cat.exitCode], ['', 0], 'stdin is empty: cat ends at once');
  t.equal((await shells.run('echo still here', 5000)).stdout, 'still here\n', 'and did not eat the command stream');
  t.equal(opened(), 1, 'all of it on one shell');
});

t.test('a command that hangs times out; its shell is dropped and the next command gets a new one', async (t) => {
  const { shells, opened } = localShells();
  t.teardown(() => shells.closeAll());
  // Deadlines with room for a loaded CI machine (two jobs beside QEMU under TCG): the echo must have run before it.
  const r = await shells.run('echo about to hang; echo on stderr >&2; sleep 30', 2000);
  t.same([r.timedOut, r.exitCode, r.reason], [true, undefined, 'timed out after 2 s']);
  t.same([r.stdout, r.stderr], ['about to hang\n', 'on stderr\n'], 'the output so far is kept as evidence');
  t.ok(r.durationMs >= 1990 && r.durationMs < 8000, `ended at the deadline (${r.durationMs} ms)`);
  const next = await shells.run('echo fresh', 5000);
  t.equal(next.stdout, 'fresh\n');
  t.equal(opened(), 2, 'a new shell');
});

t.test('a shell that dies under a command ends that command, and the next one gets a new shell', async (t) => {
  const { shells, opened } = localShells();
  t.teardown(() => shells.closeAll());
  // In a subshell $$ is still the kept shell's pid.
  const r = await shells.run('kill -KILL $$', 5000);
  t.same([r.exitCode, r.signal, r.timedOut], [undefined, undefined, false]);
  t.equal(r.reason, 'ended without an exit status: the guest shell closed');
  t.equal((await shells.run('echo again', 5000)).stdout, 'again\n');
  t.equal(opened(), 2);
});

t.test('commands started together run on shells of their own; idle shells are reused', async (t) => {
  const { shells, opened } = localShells();
  t.teardown(() => shells.closeAll());
  const t0 = Date.now();
  // One after the other would take 4 s; together 2 s and the shells' start, with room for a loaded machine.
  const [a, b] = await Promise.all([shells.run('sleep 2; echo a', 10_000), shells.run('sleep 2; echo b', 10_000)]);
  t.same([a.stdout, b.stdout], ['a\n', 'b\n']);
  t.ok(Date.now() - t0 < 3900, 'at the same time, not one after the other');
  t.equal(opened(), 2);
  await shells.run('true', 5000);
  await shells.run('true', 5000);
  t.equal(opened(), 2, 'no new shell for later commands');
});

t.test('a command line with a newline is refused (it would be two lines to the shell)', async (t) => {
  const { shells, opened } = localShells();
  await t.rejects(shells.run('echo a\necho b', 5000), /one line/);
  t.equal(opened(), 0);
});

t.test('the framer finds the markers however the streams are cut', async (t) => {
  const nonce = '0123abcd';
  const out = Buffer.from(`first line\nsecond\x1e${nonce} 2\nnext command's out`);
  const err = Buffer.from(`warning\n\x1e${nonce}\n`);
  const f = new Framer(nonce);
  // one byte at a time, stdout first: nothing is taken before both markers are whole
  for (const b of out) {
    f.push('out', Buffer.from([b]));
    t.equal(f.take(), undefined);
  }
  for (let i = 0; i < err.length - 1; i++) {
    f.push('err', err.subarray(i, i + 1));
    t.equal(f.take(), undefined);
  }
  f.push('err', err.subarray(err.length - 1));
  t.same(f.take(), { stdout: 'first line\nsecond', stderr: 'warning\n', status: 2 });
  t.equal(f.take(), undefined, 'taken once');
  f.push('out', Buffer.from(` too\n\x1e${nonce} 0\n`));
  f.push('err', Buffer.from(`\x1e${nonce}\n`));
  t.same(f.take(), { stdout: "next command's out too\n", stderr: '', status: 0 }, "what followed a marker is the next command's");
  // a marker with another nonce is output, not an end
  const g = new Framer(nonce);
  g.push('out', Buffer.from('\x1eother 0\n'));
  g.push('err', Buffer.from(`\x1e${nonce}\n`));
  t.equal(g.take(), undefined);
});

t.test('exit statuses map to an exit code or a signal', async (t) => {
  t.same(statusToEnd(0), { exitCode: 0 });
  t.same(statusToEnd(1), { exitCode: 1 });
  t.same(statusToEnd(128), { exitCode: 128 });
  t.same(statusToEnd(137), { signal: 'SIGKILL' });
  t.same(statusToEnd(139), { signal: 'SIGSEGV' });
  t.same(statusToEnd(255), { exitCode: 255 }, '255 - 128 is no signal');
});

t.test('the guest side is one sh -c script; the nonce is not among its arguments', async (t) => {
  t.same(keptShellArgv(), ['sh', '-c', KEPT_SHELL, 'kmodvm-kept-shell']);
  t.match(KEPT_SHELL, /\(unset n; eval "\$line"\) <\/dev\/null/);
});

t.test('a command cannot read the nonce, from $n or from the shell command lines, nor forge its end (#24)', async (t) => {
  const { shells } = localShells();
  t.teardown(() => shells.closeAll());
  const warm = await shells.run('true', 5000);
  t.equal(warm.exitCode, 0);
  // What a test would try: the variable, then every kept shell's command line in /proc, then a frame with what it found.
  const forged = await shells.run(
    `printf '%s|' "$n"; for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null | grep -a kmodvm-kept-shell; done; printf '\\036%s 0\\n' "$n"; printf '\\036%s\\n' "$n" >&2; exit 9`,
    5000,
  );
  t.equal(forged.exitCode, 9, 'its own exit status, not the forged 0');
  t.match(forged.stdout, /^\|/, '$n is empty in the command');
  t.notMatch(forged.stdout, /kmodvm-kept-shell [0-9a-f]{16}/, 'no command line holds the nonce');
});

t.test('the deadline covers opening a shell: a guest that never answers times the command out', async (t) => {
  const shells = new KeptShells(() => new Promise<ShellChannel>(() => undefined));
  const r = await shells.run('true', 200);
  t.same([r.timedOut, r.exitCode, r.reason], [true, undefined, 'timed out after 0 s']);
});

t.test('a shell that cannot be opened is a start failure, not a hang', async (t) => {
  const shells = new KeptShells(() => Promise.reject(new Error('No response from server')));
  const r = await shells.run('true', 5000);
  t.equal(r.reason, 'could not start: No response from server');
  t.equal(r.timedOut, false);
  t.ok(r.durationMs < 1000);
});

t.test('warming opens shells ahead, up to a number, and commands then use them', async (t) => {
  const { shells, opened } = localShells();
  t.teardown(() => shells.closeAll());
  await shells.warm(2);
  t.equal(opened(), 2);
  await shells.warm(2);
  t.equal(opened(), 2, 'already warm: nothing more');
  const [a, b] = await Promise.all([shells.run('echo a', 5000), shells.run('echo b', 5000)]);
  t.same([a.stdout, b.stdout], ['a\n', 'b\n']);
  t.equal(opened(), 2, 'two commands at once ran on the warm shells');
  const failing = new KeptShells(() => Promise.reject(new Error('refused')));
  await failing.warm(2);
  t.equal((await failing.run('true', 5000)).reason, 'could not start: refused', 'a failed warm-up is reported by the command that needed the shell');
});

t.test('100 MB of output: collected in one pass, kept up to the cap with a note, and the command ends with its status (not a timeout)', async (t) => {
  const { shells } = localShells();
  t.teardown(() => shells.closeAll());
  // Before the collection was linear, 50 MB took 79 s of host CPU and read as a timeout.
  const r = await shells.run("head -c 100000000 /dev/zero | tr '\\0' x; echo; echo done >&2; exit 3", 120_000);
  t.same([r.exitCode, r.timedOut], [3, false], r.reason);
  t.equal(r.stdout.indexOf('\n[kmodvm: '), 16 * 2 ** 20, 'the first 16 MiB are kept as they came');
  t.match(r.stdout.slice(16 * 2 ** 20), /^\n\[kmodvm: 79\.4 MiB more output not kept\]\n$/);
  t.equal(r.stderr, 'done\n');
  t.equal((await shells.run('echo next', 5000)).stdout, 'next\n', 'the shell goes on');
});

t.test('the framer, fed 100 MB in 64 KiB chunks, finds the marker at the end and keeps the cap', async (t) => {
  const nonce = 'feedbeef';
  const f = new Framer(nonce, 1 << 20);
  const chunk = Buffer.alloc(1 << 16, 0x61);
  let early = 0;
  for (let i = 0; i < 1600; i++) {
    f.push('out', chunk);
    if (f.take()) early++;
  }
  t.equal(early, 0, 'nothing is taken before the marker');
  f.push('out', Buffer.from(`\x1e${nonce} 0\n`));
  f.push('err', Buffer.from(`\x1e${nonce}\n`));
  const r = f.take();
  t.equal(r?.status, 0);
  t.equal(r?.stdout.length, (1 << 20) + '\n[kmodvm: 99.0 MiB more output not kept]\n'.length);
});
