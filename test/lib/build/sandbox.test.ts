// Host builds run the module's Makefile in bubblewrap: the real thing here,
// with a Makefile that tries to write outside its build directory and to
// see the network.
import { once } from 'node:events';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { chooseBuildMode, hostMake } from '../../../scripts/lib/build/host-kbuild.ts';
import { buildEnv, sandboxArgv, sandboxUsable } from '../../../scripts/lib/build/sandbox.ts';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';

t.test('a Makefile cannot write outside its build directory, sees no network, and its build still succeeds', async (t) => {
  t.ok(sandboxUsable().ok, 'bubblewrap runs on this host (the preflight installs it)');
  const outside = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-outside-'));
  const src = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-evil-src-'));
  const out = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-evil-out-'));
  writeFileSync(
    path.join(src, 'Makefile'),
    [
      'all:',
      `\t-echo pwned > ${outside}/pwned`,
      `\t-echo pwned > ${src}/pwned`,
      `\t-echo pwned > $(HOME)/.kmodvm-sandbox-test-pwned`,
      '\tcat /proc/net/dev > net.txt',
      '\techo inside > built.txt',
      '',
    ].join('\n'),
  );
  const b = await hostMake({ srcDir: src, outDir: out, makeArgs: [], hashSalt: 'sandbox-test', timeoutMs: 60_000 });
  t.equal(b.ok, true, b.evidence ?? b.output);
  t.equal(readFileSync(path.join(out, 'built.txt'), 'utf8'), 'inside\n', 'the build directory is writable');
  t.equal(existsSync(path.join(outside, 'pwned')), false, 'a directory elsewhere is not');
  t.equal(existsSync(path.join(src, 'pwned')), false, 'nor the sources it was copied from');
  t.equal(existsSync(path.join(os.homedir(), '.kmodvm-sandbox-test-pwned')), false, 'nor the home directory');
  t.match(b.output, /Directory nonexistent/, "make's own output says why: the rest of the host is not in its root");
  const ifaces = readFileSync(path.join(out, 'net.txt'), 'utf8')
    .split('\n')
    .slice(2)
    .filter(Boolean)
    .map((l) => l.trim().split(':')[0]);
  t.same(ifaces, ['lo'], 'no network: only a loopback of its own');
});

t.test(
  'bwrap arguments: a root of its own, the tree read-only, only the named directories writable, a cleared environment, the filter, dies with its parent',
  async (t) => {
    const a = sandboxArgv('make', ['-C', '/b'], { writable: ['/b'], readable: ['/k'], cwd: '/b', env: [['KCFLAGS', '-O1']] });
    const s = a.join(' ');
    t.notOk(s.includes('--ro-bind / /'), 'not the whole host');
    t.ok(s.includes('--ro-bind /usr /usr'));
    t.ok(s.includes('--ro-bind /k /k') && s.includes('--bind /b /b'));
    t.ok(s.includes('--tmpfs /tmp'));
    t.ok(s.includes('--clearenv --setenv PATH') && s.includes('--setenv HOME /tmp') && s.includes('--setenv KCFLAGS -O1'));
    t.ok(s.includes('--seccomp 3'));
    for (const f of ['--unshare-all', '--die-with-parent', '--new-session']) t.ok(a.includes(f), f);
    t.same(a.slice(a.indexOf('--')), ['--', 'make', '-C', '/b']);
    t.same(buildEnv({ KCPPFLAGS: '-DX', SSH_AUTH_SOCK: '/run/agent', HOME: '/root' }), [['KCPPFLAGS', '-DX']], "only kbuild's own variables pass");
  },
);

t.test("a Makefile reaches no host socket, no file of $HOME's, no variable of the host's, no /run", async (t) => {
  const home = mkdtempSync(path.join(os.homedir(), '.kmodvm-sandbox-home-'));
  const secret = path.join(home, 'secret');
  writeFileSync(secret, 'hunter2\n', { mode: 0o600 });
  const src = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-sock-src-'));
  const out = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-sock-out-'));
  const hostSock = path.join(mkdtempSync(path.join(os.tmpdir(), 'kmodvm-hostsock-')), 'qmp.sock');
  const treeSock = path.join(out, 'in-tree.sock');
  const connected: string[] = [];
  const servers = [hostSock, treeSock].map((p) => {
    const srv = net.createServer((c) => {
      connected.push(p);
      c.end();
    });
    srv.listen(p);
    return srv;
  });
  await Promise.all(servers.map((s) => once(s, 'listening')));
  process.env.KMODVM_TEST_SECRET = 'hunter3';
  process.env.SSH_AUTH_SOCK = hostSock;
  const connect = (p: string, f: string): string =>
    `\t-perl -MIO::Socket::UNIX -e 'IO::Socket::UNIX->new(Peer => $$ARGV[0]) or die "refused: $$!\\n"; print "connected\\n"' ${p} > ${f} 2>&1`;
  writeFileSync(
    path.join(src, 'Makefile'),
    [
      'all:',
      connect(treeSock, 'tree-sock.txt'),
      connect(hostSock, 'host-sock.txt'),
      connect('$$SSH_AUTH_SOCK', 'agent.txt'),
      `\t-cat ${secret} > secret.txt 2>&1`,
      '\tenv > env.txt',
      '\t-ls -A /run /home /root $(HOME) > dirs.txt 2>&1',
      '\techo done > built.txt',
      '',
    ].join('\n'),
  );
  try {
    const b = await hostMake({ srcDir: src, outDir: out, makeArgs: [], hashSalt: 'sandbox-sockets', timeoutMs: 60_000 });
    t.equal(b.ok, true, b.evidence ?? b.output);
    const read = (f: string): string => readFileSync(path.join(out, f), 'utf8');
    t.match(read('tree-sock.txt'), /refused: Address family not supported/, 'a socket in its own tree: refused by the filter');
    t.match(read('host-sock.txt'), /refused/, 'a host socket under /tmp: refused');
    t.match(read('agent.txt'), /refused/, '$SSH_AUTH_SOCK: not even set');
    t.same(connected, [], 'no server saw a connection');
    t.match(read('secret.txt'), /No such file or directory/, 'a 0600 file in $HOME is not there');
    const env = read('env.txt');
    t.notMatch(env, /hunter3|SSH_AUTH_SOCK|KMODVM_TEST_SECRET/, "the host's variables are cleared");
    t.match(env, /^PATH=/m);
    t.notMatch(read('dirs.txt'), /kmodvm-sandbox-home|\S+\.sock/, 'no /run, /home or /root to list');
  } finally {
    delete process.env.KMODVM_TEST_SECRET;
    delete process.env.SSH_AUTH_SOCK;
    for (const s of servers) s.close();
    rmSync(home, { recursive: true, force: true });
  }
});

t.test('without a usable sandbox, auto builds in the guest and says why; --build host refuses: never unconfined', async (t) => {
  const no = { ok: false, why: 'bubblewrap cannot make its namespaces on this host (setting up uid map: Permission denied)' };
  const host = { gccMajor: 12, hostHasCompiler: true, headers: true, sandbox: no };
  t.same(chooseBuildMode('auto', host), { mode: 'guest', why: `host builds run sandboxed, and ${no.why}` });
  try {
    chooseBuildMode('host', host);
    t.fail('--build host was taken without a sandbox');
  } catch (e) {
    t.ok(e instanceof KmodvmError && e.failure === 'setup' && /runs the build in a sandbox/.test(e.message), String(e));
  }
});
