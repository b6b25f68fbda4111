// An in-process ssh2 Server on 127.0.0.1, as in ssh2's own tests: exec is
// answered with canned output and exit codes. No guest boots here.
import { mkdtempSync, mkdirSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import ssh2 from 'ssh2';
import { remoteCommand, SshSession, HostKeyMismatch } from '../../scripts/lib/ssh.ts';

const host = ssh2.utils.generateKeyPairSync('ed25519');
const other = ssh2.utils.generateKeyPairSync('ed25519');
const client = ssh2.utils.generateKeyPairSync('ed25519');
const clientBlob = (ssh2.utils.parseKey(client.public) as ssh2.ParsedKey).getPublicSSH();

interface Seen { commands: string[]; files: Record<string, string>; mtimes: Record<string, number> }

async function server(t: { teardown: (f: () => void) => void }, hostKey = host.private): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { commands: [], files: {}, mtimes: {} };
  const srv = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conn.on('authentication', (ctx) => {
      if (ctx.method === 'publickey' && ctx.key.data.equals(clientBlob)) return ctx.accept();
      ctx.reject(['publickey']);
    }).on('ready', () => {
      conn.on('session', (accept) => {
        const s = accept();
        s.on('exec', (acc, _rej, info) => {
          seen.commands.push(info.command);
          const ch = acc();
          if (info.command === 'hang') return;
          if (info.command.startsWith('fail')) { ch.stderr.write('boom\n'); ch.exit(3); ch.end(); return; }
          ch.write(`ran: ${info.command}\n`);
          ch.exit(0);
          ch.end();
        });
        s.on('sftp', (acc) => {
          const sftp = acc();
          const handles = new Map<number, string>();
          let next = 0;
          sftp.on('MKDIR', (id) => sftp.status(id, ssh2.utils.sftp.STATUS_CODE.OK));
          sftp.on('OPEN', (id, filename) => { const h = Buffer.alloc(4); h.writeUInt32BE(next); handles.set(next++, filename); seen.files[filename] = ''; sftp.handle(id, h); });
          sftp.on('WRITE', (id, h, _off, data) => { const f = handles.get(h.readUInt32BE(0))!; seen.files[f] += data.toString(); sftp.status(id, ssh2.utils.sftp.STATUS_CODE.OK); });
          sftp.on('FSETSTAT', (id) => sftp.status(id, ssh2.utils.sftp.STATUS_CODE.OK));
          sftp.on('SETSTAT', (id, p, attrs) => { seen.mtimes[p] = attrs.mtime ?? -1; sftp.status(id, ssh2.utils.sftp.STATUS_CODE.OK); });
          sftp.on('CLOSE', (id) => sftp.status(id, ssh2.utils.sftp.STATUS_CODE.OK));
        });
      });
    }).on('error', () => undefined);
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  t.teardown(() => srv.close());
  return { port: (srv.address() as { port: number }).port, seen };
}

t.test('commands run on one connection, with exit codes and stderr', async (t) => {
  const { port, seen } = await server(t);
  const s = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 });
  t.teardown(() => s.close());
  const ok = await s.exec(['insmod', '/root/a b.ko'], { timeoutMs: 5000 });
  t.equal(ok.exitCode, 0);
  t.equal(ok.stdout, "ran: insmod $'/root/a b.ko'\n", 'each argument quoted for the guest shell');
  const bad = await s.exec(['fail'], { timeoutMs: 5000 });
  t.equal(bad.exitCode, 3);
  t.equal(bad.stderr, 'boom\n');
  t.equal(bad.reason, 'exited 3');
  t.same(seen.commands, ["insmod $'/root/a b.ko'", 'fail']);
});

t.test('a command that hangs times out with a result that says so', async (t) => {
  const { port } = await server(t);
  const s = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 });
  t.teardown(() => s.close());
  const r = await s.exec(['hang'], { timeoutMs: 300 });
  t.equal(r.timedOut, true);
  t.equal(r.exitCode, undefined);
  t.equal(r.reason, 'timed out after 0 s');
});

t.test('a host key other than the pinned one is refused', async (t) => {
  const { port } = await server(t, other.private);
  const err = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 }).then(() => undefined, (e: unknown) => e);
  t.ok(err instanceof HostKeyMismatch, 'rejected as a host key mismatch');
  t.match((err as Error).message, /host key other than the pinned one/);
});

t.test('upload sends regular files, skipping what skip() names', async (t) => {
  const { port, seen } = await server(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-up-'));
  mkdirSync(path.join(dir, 'sub'));
  writeFileSync(path.join(dir, 'a.c'), 'int x;\n');
  writeFileSync(path.join(dir, 'a.o'), 'junk');
  writeFileSync(path.join(dir, 'sub', 'Kbuild'), 'obj-m := a.o\n');
  const s = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 });
  t.teardown(() => s.close());
  const sent = await s.upload(dir, '/root/w', (rel) => rel.endsWith('.o'));
  t.same(sent, ['a.c', 'sub/Kbuild']);
  t.same(seen.files, { '/root/w/a.c': 'int x;\n', '/root/w/sub/Kbuild': 'obj-m := a.o\n' });
  t.equal(seen.mtimes['/root/w/a.c'], Math.floor(statSync(path.join(dir, 'a.c')).mtimeMs / 1000), 'the host mtime is kept, so make rebuilds only what changed');
});

t.test('remote commands: cwd is quoted too', async (t) => {
  t.equal(remoteCommand(['./app'], '/root/my dir'), "cd $'/root/my dir' && ./app");
  t.equal(remoteCommand(['echo', "it's"]), "echo $'it\\'s'");
});
