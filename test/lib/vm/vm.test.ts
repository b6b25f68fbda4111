// A QEMU that kmodvm started dies with it, even when kmodvm is SIGKILLed (#24 Low 17): the real mechanism, on a
// stand-in child (sleep), started through diesWithUs by a node process that is then killed with SIGKILL.
import { spawn } from 'node:child_process';
import t from 'tap';
import { waitUntil } from '../../../scripts/lib/core/wait.ts';
import { diesWithUs } from '../../../scripts/lib/vm/vm.ts';

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

t.test('the argv: setpriv --pdeathsig KILL before QEMU, or QEMU as it is where setpriv is missing', async (t) => {
  t.same(diesWithUs('qemu-system-x86_64', ['-m', '1024'], true), ['/usr/bin/setpriv', ['--pdeathsig', 'KILL', '--', 'qemu-system-x86_64', '-m', '1024']]);
  t.same(diesWithUs('qemu-system-x86_64', ['-m', '1024'], false), ['qemu-system-x86_64', ['-m', '1024']]);
});

t.test('a SIGKILLed parent takes its child with it', async (t) => {
  const [cmd, args] = diesWithUs('sleep', ['60']);
  const code = `const { spawn } = require('node:child_process'); const c = spawn(${JSON.stringify(cmd)}, ${JSON.stringify(args)}, { stdio: 'ignore' }); console.log(c.pid); setInterval(() => {}, 1000);`;
  const parent = spawn(process.execPath, ['-e', code], { stdio: ['ignore', 'pipe', 'inherit'] });
  const pid = await new Promise<number>((resolve) => parent.stdout.once('data', (d: Buffer) => resolve(Number(String(d).trim()))));
  t.ok(alive(pid), 'the child runs');
  parent.kill('SIGKILL');
  await new Promise((r) => parent.on('close', r));
  // The kernel sends the signal as the parent exits; the child is reaped by init soon after.
  const gone = await waitUntil(() => !alive(pid), { deadlineMs: 5000, intervalMs: 20 });
  t.equal(gone.end, 'ready', 'the child is gone');
});
