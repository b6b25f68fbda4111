import t from 'tap';
import { decide, findTool, missingRequirements, REQUIREMENTS } from '../../../scripts/lib/host/preflight.ts';

const qemu = REQUIREMENTS.filter((r) => r.probe === 'qemu-system-x86_64');
const two = REQUIREMENTS.filter((r) => ['qemu-system-x86_64', 'mmdebstrap'].includes(r.probe));

t.test('nothing missing: nothing to do', async (t) => {
  t.same(decide([], { root: false, passwordlessSudo: false }), { action: 'none' });
});

t.test('root installs with apt-get, without prompts', async (t) => {
  t.same(decide(qemu, { root: true, passwordlessSudo: false }), {
    action: 'install',
    commands: [
      ['apt-get', 'update', '-q'],
      ['apt-get', 'install', '-y', '-q', '--no-install-recommends', 'qemu-system-x86'],
    ],
  });
});

t.test('passwordless sudo installs through sudo -n', async (t) => {
  const d = decide(two, { root: false, passwordlessSudo: true });
  t.equal(d.action, 'install');
  if (d.action === 'install') t.same(d.commands[1].slice(0, 3), ['sudo', '-n', '--preserve-env=DEBIAN_FRONTEND']);
});

t.test('otherwise: the one command to run', async (t) => {
  t.same(decide(two, { root: false, passwordlessSudo: false }), {
    action: 'tell',
    command: 'sudo apt-get update && sudo apt-get install -y -q --no-install-recommends qemu-system-x86 mmdebstrap',
  });
});

t.test('missing tools are found by probing, including sbin and absolute files', async (t) => {
  t.same(
    missingRequirements(REQUIREMENTS, (p) => (p === 'cpio' ? undefined : '/bin/x')).map((r) => r.pkg),
    ['cpio'],
  );
  t.ok(findTool('sh', '/usr/bin:/bin'));
  t.equal(findTool('no-such-tool-kmodvm', '/usr/bin'), undefined);
  t.equal(findTool('/no/such/file.gpg'), undefined);
});
