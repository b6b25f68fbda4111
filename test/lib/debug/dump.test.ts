// The crash-dump watcher against a recorded QMP session of a real panic
// (QEMU 7.2, Debian 12's guest: set-action, GUEST_PANICKED, dump-guest-memory,
// query-dump until completed, quit), replayed by a server that answers each
// command with the lines QEMU sent after it, and writes the vmcore where the
// command says, as QEMU did. The guest's answers are recorded ones too.
import { existsSync, mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { DumpWatch } from '../../../scripts/lib/debug/dump.ts';
import type { SshSession } from '../../../scripts/lib/guest/ssh.ts';
import { loadRules } from '../../../scripts/lib/verdict/splat.ts';

const recorded = readFileSync(new URL('../../fixtures/qmp/qemu-7.2-panic-dump.txt', import.meta.url), 'utf8')
  .split('\n')
  .filter(Boolean);
const fixture = (f: string): string => new URL(`../../fixtures/dump/${f}`, import.meta.url).pathname;
const rules = loadRules([new URL('../../../rules/splat.json', import.meta.url).pathname]);

/** The recording as blocks: what QEMU sent first, then after each command. */
const blocks: string[][] = [[]];
for (const l of recorded)
  if (l.startsWith('>>> ')) blocks.push([]);
  else blocks.at(-1)!.push(l);
const commandsRecorded = recorded.filter((l) => l.startsWith('>>> ')).map((l) => JSON.parse(l.slice(4)).execute);

async function replay(
  t: { teardown: (f: () => void) => void },
  dir: string,
): Promise<{ received: { execute: string; arguments?: Record<string, unknown> }[] }> {
  const received: { execute: string; arguments?: Record<string, unknown> }[] = [];
  const srv = net.createServer((c) => {
    let b = 0;
    for (const l of blocks[b++]) c.write(`${l}\n`);
    c.on('data', (d) => {
      for (const line of d.toString().split('\n').filter(Boolean)) {
        const cmd = JSON.parse(line);
        received.push(cmd);
        const proto = cmd.arguments?.protocol as string | undefined;
        if (cmd.execute === 'dump-guest-memory' && proto?.startsWith('file:')) writeFileSync(proto.slice(5), Buffer.alloc(4096, 1));
        for (const l of blocks[b++] ?? []) c.write(`${l}\n`);
      }
    });
  });
  await new Promise<void>((r) => srv.listen(path.join(dir, 'events.sock'), r));
  t.teardown(() => srv.close());
  return { received };
}

const session = (answer: string) => ({ exec: async () => ({ stdout: answer, stderr: '', exitCode: 0 }) }) as unknown as SshSession;

t.test('a panic: the watcher sets pause, writes the memory as kdump-zlib with dump.json and the .ko, then quits QEMU', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-dump-'));
  const { received } = await replay(t, dir);
  const ko = path.join(dir, 'crashme.ko');
  writeFileSync(ko, 'ELF');
  const w = await DumpWatch.arm({
    guest: {
      session: session(readFileSync(fixture('setup-debian-12.txt'), 'utf8')),
      serialLog: fixture('serial-crashme-oops.log'),
      qmpSocket: path.join(dir, 'qmp.sock'),
    },
    runDir: dir,
    modules: [{ name: 'crashme', guestKo: '/root/x/crashme.ko', host: { ko } }],
    rules,
    kernelPackage: { suite: 'bookworm', name: 'linux-image-6.1.0-57-amd64', version: '6.1.192-3' },
    timeoutMs: 5000,
    openCommand: 'npx kmodvm crash RUN',
  });
  w.test = 'oops';
  const step = await w.settle();
  t.match(step, {
    name: 'dump',
    ok: true,
    message: 'the guest panicked; its memory is in dump/vmcore (0 MiB, kdump-zlib); open it with: npx kmodvm crash RUN',
  });
  t.same(
    received.map((c) => c.execute),
    commandsRecorded,
    'the same commands as the real session, query-dump until it completed, then quit',
  );
  t.same(received[1].arguments, { panic: 'pause' });
  t.same(received[2].arguments, { paging: false, protocol: `file:${path.join(dir, 'dump', 'vmcore')}`, detach: true, format: 'kdump-zlib' });
  const rec = JSON.parse(readFileSync(path.join(dir, 'dump', 'dump.json'), 'utf8'));
  t.match(rec, {
    format: 'kmodvm-dump/1',
    test: 'oops',
    release: '6.1.0-57-amd64',
    vmcore: 'vmcore',
    bytes: 4096,
    vmcoreinfo: true,
    modules: [{ name: 'crashme', ko: 'modules/crashme.ko' }],
  });
  t.match(
    rec.panic,
    /^bug in serial\.log line 6:\n {2}BUG: kernel NULL pointer dereference[\s\S]*crashme_deref\+0x5\/0x10 \[crashme\][\s\S]*Kernel panic - not syncing: Fatal exception$/,
  );
  t.equal(readFileSync(path.join(dir, 'dump', 'modules', 'crashme.ko'), 'utf8'), 'ELF', 'the .ko travels with the dump');
  t.equal(statSync(path.join(dir, 'dump', 'vmcore')).mode & 0o777, 0o600, "the guest's memory is private");
  t.equal(statSync(path.join(dir, 'dump')).mode & 0o777, 0o700);
});

t.test('a guest without the pvpanic driver is refused at arming, before any monitor is taken', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-dump-'));
  const answer = readFileSync(fixture('setup-debian-12.txt'), 'utf8').replace('pvpanic=yes', 'pvpanic=no');
  await t.rejects(
    DumpWatch.arm({
      guest: { session: session(answer), serialLog: '/dev/null', qmpSocket: path.join(dir, 'qmp.sock') },
      runDir: dir,
      modules: [],
      rules,
      timeoutMs: 1000,
      openCommand: '',
    }),
    { failure: 'setup', message: /--dump: the guest kernel 6\.1\.0-57-amd64 has no pvpanic driver/ },
  );
  t.notOk(existsSync(path.join(dir, 'dump')));
});
