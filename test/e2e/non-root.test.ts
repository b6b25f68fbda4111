// The README's recipe for a user without passwordless sudo (issue 18.10):
// build the image as root into that user's cache, then use it as that user.
// Here root stands for sudo: SUDO_UID names the user, as sudo sets it, and
// the user is nobody (65534), reached with setpriv. It used to end in exit 70,
// EACCES on id_ed25519, with a stack trace.
import { chmodSync, chownSync, mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const bin = path.join(root, 'bin/kmodvm.js');
const NOBODY = 65534;

t.test("root builds the image into a user's cache; that user then reads it and runs vm:test on it", async (t) => {
  t.equal(process.getuid?.(), 0, 'this test runs as root, as CI does (it stands in for sudo), and drops to nobody');
  const home = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-home-'));
  chownSync(home, NOBODY, NOBODY);
  chmodSync(home, 0o755);
  const cache = path.join(home, '.cache', 'kmodvm');
  // The compiled CLI, fresh, as root made it: nobody cannot write the checkout.
  await execa(process.execPath, [bin, '--help'], { cwd: root });
  const build = await execa(process.execPath, [bin, 'image', 'build'], {
    reject: false,
    cwd: root,
    timeout: 40 * 60_000,
    env: { ...process.env, KMODVM_CACHE_DIR: cache, SUDO_UID: String(NOBODY), SUDO_GID: String(NOBODY) },
  });
  t.equal(build.exitCode, 0, build.stderr.split('\n').slice(-10).join('\n'));
  t.match(build.stderr, /image: handed to uid 65534:65534/);
  const asUser = (args: string[]) =>
    // env -u: the test runner adds its hooks to every child's NODE_OPTIONS, and they would write into the checkout, which nobody cannot.
    execa('setpriv', ['--reuid', String(NOBODY), '--regid', String(NOBODY), '--clear-groups', 'env', '-u', 'NODE_OPTIONS', process.execPath, bin, ...args], {
      reject: false,
      cwd: root,
      timeout: 20 * 60_000,
      // A user's own environment, not the test runner's.
      extendEnv: false,
      env: { PATH: process.env.PATH, HOME: home, KMODVM_CACHE_DIR: cache, XDG_CACHE_HOME: path.join(home, '.cache'), CI: process.env.CI },
    });
  const info = await asUser(['image', 'info']);
  t.equal(info.exitCode, 0, info.stderr);
  t.notMatch(info.stderr, /EACCES|at .*\.js:\d+/, 'no permission error, no stack trace');
  const runs = path.join(home, 'runs');
  const test = await asUser(['test', '--runs-dir', runs]);
  t.equal(test.exitCode, 0, test.stderr.split('\n').slice(-15).join('\n'));
  t.match(test.stderr, /verdict: PASS/);
});
