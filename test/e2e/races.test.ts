// Races between processes on one instance (issue 18.4): two `kmodvm up` of
// one name at once boot one QEMU, and `status`, `ssh` and `down` during a
// boot that has not written state.json yet leave it alone.
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const name = `race-${process.pid}`;
const kmodvm = (args: string[]) => execa(process.execPath, [path.join(root, 'bin/kmodvm.js'), ...args], { reject: false, cwd: root, timeout: 15 * 60_000 });

/** The QEMU processes whose command line names this instance's directory. */
function qemusOf(instance: string): number[] {
  return readdirSync('/proc')
    .filter((p) => /^\d+$/.test(p))
    .filter((p) => {
      try {
        const cmd = readFileSync(`/proc/${p}/cmdline`, 'utf8');
        return cmd.includes('qemu-system') && cmd.includes(`/instances/${instance}/`);
      } catch {
        return false;
      }
    })
    .map(Number);
}

t.teardown(async () => {
  await kmodvm(['down', '--name', name]);
});

t.test('two kmodvm up of one name at once: one boots, the other waits and finds it up; one QEMU', async (t) => {
  const during: { exitCode?: number; stderr: string }[] = [];
  const a = kmodvm(['up', '--name', name]);
  const b = kmodvm(['up', '--name', name]);
  // While they boot: status, ssh and down must not take the booting instance's files for a leftover.
  for (let i = 0; i < 3; i++) {
    during.push(await kmodvm(['status']));
    await new Promise((r) => setTimeout(r, 300));
  }
  const [ra, rb] = await Promise.all([a, b]);
  t.same([ra.exitCode, rb.exitCode], [0, 0], `${ra.stderr}\n---\n${rb.stderr}`);
  t.equal([ra, rb].filter((r) => /is already up/.test(r.stderr)).length, 1, 'one of them found the other one up');
  t.equal(qemusOf(name).length, 1, 'one QEMU, none orphaned');
  t.ok(
    during.every((d) => d.exitCode === 0),
    'status during the boot exits 0',
  );
  const ssh = await kmodvm(['ssh', '--name', name, '--', 'true']);
  t.equal(ssh.exitCode, 0, ssh.stderr);
});

t.test('down takes the one QEMU with it', async (t) => {
  const d = await kmodvm(['down', '--name', name]);
  t.equal(d.exitCode, 0, d.stderr);
  t.same(qemusOf(name), []);
});
