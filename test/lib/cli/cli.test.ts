import { spawn } from 'node:child_process';
import { EventEmitter } from 'node:events';
import path from 'node:path';
import t from 'tap';
import { quietOnClosedPipe } from '../../../scripts/lib/cli/cli.ts';

const root = path.join(import.meta.dirname, '../../..');

t.test('EPIPE on stdout ends the process quietly with 0; other stream errors are not hidden', async (t) => {
  const stream = new EventEmitter() as unknown as NodeJS.WriteStream;
  const codes: number[] = [];
  quietOnClosedPipe(stream, (c) => {
    codes.push(c);
  });
  stream.emit('error', Object.assign(new Error('write EPIPE'), { code: 'EPIPE' }));
  t.same(codes, [0]);
  t.throws(() => stream.emit('error', Object.assign(new Error('write EIO'), { code: 'EIO' })), /EIO/);
});

t.test('an entry point piped into a reader that stops (| head) exits 0 without a stack trace', async (t) => {
  // a real pipe: the child writes far more than a pipe holds; we read one chunk and close our end
  const code = `import { main } from ${JSON.stringify(path.join(root, 'scripts/lib/cli/cli.ts'))};
await main(async () => { for (let i = 0; i < 2000; i++) process.stdout.write('x'.repeat(1000) + '\\n'); await new Promise((r) => setTimeout(r, 500)); return 0; });`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr += d.toString();
  });
  child.stdout.once('data', () => child.stdout.destroy());
  const exit = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  t.equal(exit, 0);
  t.notMatch(stderr, /EPIPE|Unhandled|at /, 'no stack trace');
});

t.test('an unhandled rejection exits 70 with its stack, never 1; SIGTERM exits 143 and kills QEMU first', async (t) => {
  const run = (code: string) =>
    new Promise<{ exit: number | null; stderr: string }>((resolve) => {
      const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      child.stderr.on('data', (d: Buffer) => {
        stderr += d.toString();
      });
      child.on('close', (exit) => resolve({ exit, stderr }));
    });
  const cli = JSON.stringify(path.join(root, 'scripts/lib/cli/cli.ts'));
  const r = await run(`import { main } from ${cli};
await main(async () => { void Promise.reject(new Error('forgotten promise')); await new Promise((r) => setTimeout(r, 300)); return 0; });`);
  t.equal(r.exit, 70);
  t.match(r.stderr, /error \[internal\]: forgotten promise\n[\s\S]*at /);
  const vm = JSON.stringify(path.join(root, 'scripts/lib/vm/vm.ts'));
  const term = await run(`import { main } from ${cli}; import { Vm } from ${vm};
await main(async () => { new Vm({ accel: 'tcg', cpus: 1, memoryMiB: 256, kernel: '/nonexistent', initrd: '/nonexistent', cmdline: [], rootfs: '/nonexistent', sshPort: 0, serialLog: '/dev/null', qmpSocket: '/tmp/x.sock' }); setTimeout(() => process.kill(process.pid, 'SIGTERM'), 100); await new Promise((r) => setTimeout(r, 5000)); return 0; });`);
  t.equal(term.exit, 143, 'SIGTERM: 143');
});

/** What the Actions runner would act on: workflow commands outside a ::stop-commands:: fence (both syntaxes). */
function activeCommands(out: string): string[] {
  const active: string[] = [];
  let token: string | undefined;
  for (const line of out.split('\n')) {
    const l = line.trimStart();
    if (token) {
      if (l === `::${token}::`) token = undefined;
      continue;
    }
    const stop = /^::stop-commands::(.+)$/.exec(l);
    if (stop) token = stop[1];
    else if (l.startsWith('::') || line.includes('##[')) active.push(l);
  }
  return active;
}

t.test('on GitHub Actions, what the guest printed cannot become a workflow command; our own annotations still do', async (t) => {
  const code = `import { log, main, workflowCommands } from ${JSON.stringify(path.join(root, 'scripts/lib/cli/cli.ts'))};
await main(async () => {
  process.stdout.write('    ::add-mask::hunter2\\n');
  log('  ::error file=x.c,line=1::a module steering the job');
  process.stdout.write('dmesg: ##[error]also the old syntax\\n');
  workflowCommands(['::error title=kmodvm transcript::the real one']);
  process.stdout.write('::warning::after the annotations, fenced again\\n');
  return 1;
});`;
  const child = spawn('sh', ['-c', `"${process.execPath}" --import tsx --input-type=module -e "$0" 2>&1`, code], {
    cwd: root,
    env: { ...process.env, GITHUB_ACTIONS: 'true' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  const exit = await new Promise<number | null>((r) => child.on('close', (c) => r(c)));
  t.equal(exit, 1);
  t.same(activeCommands(out), ['::error title=kmodvm transcript::the real one'], out);
  t.match(out, /::add-mask::hunter2/, 'the line is still shown, inert');
  const plain = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, env: { ...process.env, GITHUB_ACTIONS: '' } });
  let o2 = '';
  plain.stdout.on('data', (d: Buffer) => {
    o2 += d.toString();
  });
  await new Promise((r) => plain.on('close', r));
  t.notMatch(o2, /stop-commands|the real one/, 'elsewhere: no fence, and no annotations');
});

t.test('on GitHub Actions everything goes through stdout, in order, so nothing the guest printed arrives after the fence is lifted (#24 Low 11)', async (t) => {
  const code = `import { log, main, workflowCommands } from ${JSON.stringify(path.join(root, 'scripts/lib/cli/cli.ts'))};
await main(async () => {
  log('::error::guest text on the log, just before our annotations');
  workflowCommands(['::error title=kmodvm::ours']);
  return 0;
});`;
  const child = spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code], { cwd: root, env: { ...process.env, GITHUB_ACTIONS: 'true' } });
  let out = '';
  let err = '';
  child.stdout.on('data', (d: Buffer) => {
    out += d.toString();
  });
  child.stderr.on('data', (d: Buffer) => {
    err += d.toString();
  });
  await new Promise((r) => child.on('close', r));
  t.equal(err, '', 'nothing on stderr, which the runner would read apart');
  t.same(activeCommands(out), ['::error title=kmodvm::ours'], out);
});
