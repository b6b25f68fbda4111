import { readFileSync } from 'node:fs';
import { mkdtemp } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { parseQmpLines, Qmp } from '../../../scripts/lib/vm/qmp.ts';

// A real session with QEMU 7.2 (-machine none): greeting, qmp_capabilities,
// query-status, query-migrate, an unknown command, stop and cont, with the
// STOP and RESUME events QEMU sent between the replies.
const recorded = readFileSync(new URL('../../fixtures/qmp/qemu-7.2-session.txt', import.meta.url), 'utf8');

t.test('parseQmpLines splits whole lines and keeps a partial one for later', async (t) => {
  const { messages, rest } = parseQmpLines(recorded);
  t.equal(messages.length, 9);
  t.same(messages[2], { return: { status: 'running', singlestep: false, running: true } });
  t.equal(messages[5].event, 'STOP');
  t.equal(rest, '', 'the recording ends in a newline');
  const half = parseQmpLines('{"return": {}}\n{"return": {"sta');
  t.same(half.messages, [{ return: {} }]);
  t.equal(half.rest, '{"return": {"sta');
  t.same(parseQmpLines('\n\n').messages, [], 'blank lines are not messages');
});

/** A QMP server that replays the recording: the greeting, then per command the recorded lines up to its reply. */
async function replayServer(t: { teardown: (f: () => void) => void }, o: { hangUpAfter?: number } = {}): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-qmp-'));
  const sock = path.join(dir, 'qmp.sock');
  const lines = recorded.split('\n').filter(Boolean);
  const srv = net.createServer((c) => {
    let i = 0;
    c.write(lines[i++] + '\n');
    let commands = 0;
    c.on('data', (d) => {
      for (const _ of d.toString().split('\n').filter(Boolean)) {
        if (o.hangUpAfter !== undefined && commands++ >= o.hangUpAfter) {
          c.destroy();
          return;
        }
        // events, then the reply
        while (i < lines.length && JSON.parse(lines[i]).event) c.write(lines[i++] + '\n');
        if (i < lines.length) c.write(lines[i++] + '\n');
      }
    });
  });
  await new Promise<void>((r) => srv.listen(sock, r));
  t.teardown(() => srv.close());
  return sock;
}

t.test('commands get their replies in order; events are skipped; an error rejects with its class', async (t) => {
  const q = await Qmp.connect(await replayServer(t), { deadlineMs: 2000, alive: () => true });
  t.teardown(() => q.close());
  t.same(await q.execute('query-status'), { status: 'running', singlestep: false, running: true });
  t.same(await q.execute('query-migrate'), {});
  await t.rejects(q.execute('no-such-command'), /no-such-command: CommandNotFound: The command no-such-command has not been found/);
  t.same(await q.execute('stop'), {}, 'the STOP event before the reply is not taken for it');
  t.same(await q.execute('cont'), {});
});

t.test('onEvent: each event named so reaches the watcher, one kept from before it registered too; others do not', async (t) => {
  const q = await Qmp.connect(await replayServer(t), { deadlineMs: 2000, alive: () => true });
  t.teardown(() => q.close());
  await q.execute('query-status');
  await q.execute('query-migrate');
  await q.execute('no-such-command').catch(() => undefined);
  await q.execute('stop');
  const seen: string[] = [];
  q.onEvent('STOP', (e) => seen.push(e.event!));
  t.same(seen, ['STOP'], 'the STOP that came before onEvent');
  await q.execute('cont');
  t.same(seen, ['STOP'], 'RESUME is not STOP');
});

t.test('a connection QEMU closes rejects the command waiting on it', async (t) => {
  const q = await Qmp.connect(await replayServer(t, { hangUpAfter: 1 }), { deadlineMs: 2000, alive: () => true });
  t.teardown(() => q.close());
  await t.rejects(q.execute('query-status'), /QMP connection closed/);
});

t.test('connect: a dead QEMU fails at once; a socket that never comes fails at the deadline', async (t) => {
  const missing = path.join(await mkdtemp(path.join(os.tmpdir(), 'kmodvm-qmp-')), 'qmp.sock');
  await t.rejects(Qmp.connect(missing, { deadlineMs: 5000, alive: () => false }), /QEMU exited before its QMP socket was up/);
  const t0 = Date.now();
  await t.rejects(Qmp.connect(missing, { deadlineMs: 200, alive: () => true }), /no QMP socket at .* within 200 ms/);
  t.ok(Date.now() - t0 < 5000, 'gave up near the deadline, not at the 5 s one');
});

t.test('a QEMU that never sends its greeting, or never answers, ends in a QmpError within the reply timeout', async (t) => {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-qmp-'));
  const silent = path.join(dir, 'silent.sock');
  const srv = net.createServer(() => undefined); // accepts, says nothing
  await new Promise<void>((r) => srv.listen(silent, r));
  t.teardown(() => srv.close());
  const t0 = Date.now();
  await t.rejects(Qmp.connect(silent, { deadlineMs: 20_000, alive: () => true, replyMs: 200 }), /no answer to the greeting within 200 ms/);
  t.ok(Date.now() - t0 < 10_000, 'it did not wait for the connect deadline');
  const mute = path.join(dir, 'mute.sock');
  const greetsOnly = net.createServer((c) => c.write(`${recorded.split('\n')[0]}\n`));
  await new Promise<void>((r) => greetsOnly.listen(mute, r));
  t.teardown(() => greetsOnly.close());
  await t.rejects(Qmp.connect(mute, { deadlineMs: 2000, alive: () => true, replyMs: 200 }), /no answer to qmp_capabilities within 200 ms/);
});
