// Host builds run the module's Makefile in bubblewrap: the real thing here,
// with a Makefile that tries to write outside its build directory and to
// see the network.
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { chooseBuildMode, hostMake } from '../../../scripts/lib/build/hostbuild.ts';
import { sandboxArgv, sandboxUsable } from '../../../scripts/lib/build/sandbox.ts';
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
  t.match(b.output, /Read-only file system/, "make's own output says why");
  const ifaces = readFileSync(path.join(out, 'net.txt'), 'utf8')
    .split('\n')
    .slice(2)
    .filter(Boolean)
    .map((l) => l.trim().split(':')[0]);
  t.same(ifaces, ['lo'], 'no network: only a loopback of its own');
});

t.test('bwrap arguments: / read-only, only the named directories writable, everything unshared, dies with its parent', async (t) => {
  const a = sandboxArgv('make', ['-C', '/b'], { writable: ['/b'], cwd: '/b' });
  t.same(a.slice(0, 3), ['--ro-bind', '/', '/']);
  t.ok(a.join(' ').includes('--bind /b /b'));
  for (const f of ['--unshare-all', '--die-with-parent', '--new-session']) t.ok(a.includes(f), f);
  t.same(a.slice(a.indexOf('--')), ['--', 'make', '-C', '/b']);
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
