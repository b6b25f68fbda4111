// An in-process ssh2 Server on 127.0.0.1, as in ssh2's own tests: exec is
// answered with canned output and exit codes. No guest boots here.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, statSync, utimesSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';
import { HostKeyMismatch, remoteCommand, SshSession } from '../../../scripts/lib/guest/ssh.ts';

const host = ssh2.utils.generateKeyPairSync('ed25519');
const other = ssh2.utils.generateKeyPairSync('ed25519');
const client = ssh2.utils.generateKeyPairSync('ed25519');
const clientBlob = (ssh2.utils.parseKey(client.public) as ssh2.ParsedKey).getPublicSSH();

interface Seen {
  commands: string[];
  tar?: Buffer;
}

async function server(t: { teardown: (f: () => void) => void }, hostKey = host.private): Promise<{ port: number; seen: Seen }> {
  const seen: Seen = { commands: [] };
  const srv = new ssh2.Server({ hostKeys: [hostKey] }, (conn) => {
    conn
      .on('authentication', (ctx) => {
        if (ctx.method === 'publickey' && ctx.key.data.equals(clientBlob)) return ctx.accept();
        ctx.reject(['publickey']);
      })
      .on('ready', () => {
        conn.on('session', (accept) => {
          const s = accept();
          s.on('exec', (acc, _rej, info) => {
            seen.commands.push(info.command);
            const ch = acc();
            if (info.command === 'hang') return;
            if (info.command.includes('kmodvm-kept-shell')) {
              // a kept shell: the real script, run by the host's sh, on this channel
              const sh = spawn('/bin/sh', ['-c', info.command]);
              ch.pipe(sh.stdin);
              sh.stdout.pipe(ch, { end: false });
              sh.stderr.pipe(ch.stderr);
              sh.on('close', (code) => {
                ch.exit(code ?? 255);
                ch.end();
              });
              ch.on('close', () => sh.kill());
              return;
            }
            if (info.command.startsWith('tar -x')) {
              // the upload: keep the tar stream it sends on stdin
              const parts: Buffer[] = [];
              ch.on('data', (d: Buffer) => parts.push(d));
              ch.on('end', () => {
                seen.tar = Buffer.concat(parts);
                ch.exit(0);
                ch.end();
              });
              return;
            }
            if (info.command.startsWith('fail')) {
              ch.stderr.write('boom\n');
              ch.exit(3);
              ch.end();
              return;
            }
            ch.write(`ran: ${info.command}\n`);
            ch.exit(0);
            ch.end();
          });
        });
      })
      .on('error', () => undefined);
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
  t.equal(ok.stdout, "ran: insmod '/root/a b.ko'\n", 'each argument quoted for the guest shell');
  const bad = await s.exec(['fail'], { timeoutMs: 5000 });
  t.equal(bad.exitCode, 3);
  t.equal(bad.stderr, 'boom\n');
  t.equal(bad.reason, 'exited 3');
  t.same(seen.commands, ["insmod '/root/a b.ko'", 'fail']);
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
  const err = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 }).then(
    () => undefined,
    (e: unknown) => e,
  );
  t.ok(err instanceof HostKeyMismatch, 'rejected as a host key mismatch');
  t.match((err as Error).message, /host key other than the pinned one/);
});

/** A session to the test server, closed when the test ends. */
async function open(t: { teardown: (f: () => void) => void }, port: number): Promise<SshSession> {
  const s = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 });
  t.teardown(() => s.close());
  return s;
}

/** A module tree and an app tree, each with its files. */
function trees(mod: Record<string, string>, app: Record<string, [string, number?]>): { mod: string; app: string } {
  const dirs = { mod: mkdtempSync(path.join(os.tmpdir(), 'kmodvm-up-mod-')), app: mkdtempSync(path.join(os.tmpdir(), 'kmodvm-up-app-')) };
  for (const [n, text] of Object.entries(mod)) writeFileSync(path.join(dirs.mod, n), text);
  for (const [n, [text, mode]] of Object.entries(app)) writeFileSync(path.join(dirs.app, n), text, mode === undefined ? {} : { mode });
  return dirs;
}

/** What the guest would unpack at / from the stream the server received: extracted for real; the directory of `base` in it. */
function unpacked(tar: Buffer | undefined, base: string): string {
  const top = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-down-'));
  execFileSync('tar', ['-x', '-f', '-', '-C', top], { input: tar });
  return path.join(top, base.slice(1));
}

t.test('upload sends regular files, skipping what skip() names', async (t) => {
  const { port, seen } = await server(t);
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-up-'));
  mkdirSync(path.join(dir, 'sub'));
  writeFileSync(path.join(dir, 'a.c'), 'int x;\n');
  utimesSync(path.join(dir, 'a.c'), 1_000_000_000, 1_000_000_000); // an old mtime, which a fresh write would not have
  writeFileSync(path.join(dir, 'a.o'), 'junk');
  writeFileSync(path.join(dir, 'sub', 'Kbuild'), 'obj-m := a.o\n');
  const s = await open(t, port);
  const sent = await s.upload(dir, '/root/w', (rel) => rel.endsWith('.o'));
  t.same(sent, ['a.c', 'sub/Kbuild']);
  t.equal(seen.commands.at(-1), 'tar -x --no-same-owner -f - -C /', 'one exec, one program: the members carry the guest path');
  const out = unpacked(seen.tar, '/root/w');
  t.equal(readFileSync(path.join(out, 'a.c'), 'utf8'), 'int x;\n');
  t.equal(readFileSync(path.join(out, 'sub/Kbuild'), 'utf8'), 'obj-m := a.o\n');
  t.notOk(existsSync(path.join(out, 'a.o')), 'skipped files are not sent');
  t.equal(Math.floor(statSync(path.join(out, 'a.c')).mtimeMs / 1000), 1_000_000_000, 'the host mtime is kept, so make rebuilds only what changed');
});

t.test('uploadTrees sends several directories in one stream, each under its own name', async (t) => {
  const { port, seen } = await server(t);
  const { mod, app } = trees({ 'm.ko': 'ko', 'm.c': 'c' }, { app: ['#!/bin/sh\n', 0o755] });
  const s = await open(t, port);
  const sent = await s.uploadTrees('/root/kmodvm', [
    { localDir: mod, sub: 'kernel-module', skip: (r) => r !== 'm.ko' },
    { localDir: app, sub: 'userapp' },
  ]);
  t.same(sent, ['kernel-module/m.ko', 'userapp/app']);
  t.equal(seen.commands.length, 1, 'one exec for both trees');
  const out = unpacked(seen.tar, '/root/kmodvm');
  t.equal(readFileSync(path.join(out, 'kernel-module/m.ko'), 'utf8'), 'ko');
  t.notOk(existsSync(path.join(out, 'kernel-module/m.c')));
  t.equal(statSync(path.join(out, 'userapp/app')).mode & 0o777, 0o755, 'the executable bit survives');
  await t.rejects(s.uploadTrees('/root/x', [{ localDir: app, sub: '../etc' }]), /not a plain directory name/);
  for (const bad of ['root/x', '/root/../etc', '/root/a b', '/'])
    await t.rejects(s.uploadTrees(bad, [{ localDir: app, sub: 'u' }]), /not a plain absolute guest path/, bad);
});

t.test('skipUnchanged: a kept guest gets only the files whose contents changed on this connection', async (t) => {
  const { port, seen } = await server(t);
  const { mod, app } = trees({ 'm.ko': 'ko 1' }, { app: ['app 1'] });
  const parts = [
    { localDir: mod, sub: 'kernel-module' },
    { localDir: app, sub: 'userapp' },
  ];
  const s = await open(t, port);
  t.same(await s.uploadTrees('/root/kmodvm', parts, 5000, { skipUnchanged: true }), ['kernel-module/m.ko', 'userapp/app'], 'the first time: everything');
  writeFileSync(path.join(mod, 'm.ko'), 'ko 2');
  t.same(await s.uploadTrees('/root/kmodvm', parts, 5000, { skipUnchanged: true }), ['kernel-module/m.ko'], 'only the rebuilt module');
  const out = unpacked(seen.tar, '/root/kmodvm');
  t.equal(readFileSync(path.join(out, 'kernel-module/m.ko'), 'utf8'), 'ko 2');
  t.notOk(existsSync(path.join(out, 'userapp/app')), 'the unchanged app is not in the stream');
  t.same(await s.uploadTrees('/root/kmodvm', parts, 5000, { skipUnchanged: true }), [], 'nothing changed: nothing sent');
  t.equal(seen.commands.length, 2, 'and no exec at all');
  t.same(await s.uploadTrees('/root/kmodvm', parts, 5000), ['kernel-module/m.ko', 'userapp/app'], 'without the option: everything, always');
  t.same(
    await s.uploadTrees('/root/other', parts, 5000, { skipUnchanged: true }),
    ['kernel-module/m.ko', 'userapp/app'],
    'another remote directory has nothing yet',
  );
});

t.test('remote commands: cwd is quoted too', async (t) => {
  t.equal(remoteCommand(['./app'], '/root/my dir'), "cd '/root/my dir' && ./app");
  t.equal(remoteCommand(['echo', "it's"]), "echo 'it'\\''s'");
  // The guest's login shell is dash: run the quoted line through a real dash-compatible sh.
  const nasty = ['a b', "it's", '$HOME', '`id`', 'x;y', '', 'tab\there', 'new\nline', '*', '"q"', '\\'];
  const out = execFileSync('/bin/sh', ['-c', remoteCommand(['printf', '%s\\0', ...nasty])]);
  t.same(out.toString().split('\0').slice(0, -1), nasty, 'every argument arrives as it was, with no expansion');
});

t.test('steps on a kept shell: one exec for many commands, the same results as their own channels', async (t) => {
  const { port, seen } = await server(t);
  const s = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 });
  t.teardown(() => s.close());
  const nasty = ['a b', "it's", '$HOME', '`x`', '"q"', '*'];
  const a = await s.execKept(['printf', '%s|', ...nasty], { timeoutMs: 5000 });
  t.equal(a.stdout, `${nasty.join('|')}|`, 'every argument arrives as it was');
  const b = await s.execKept(['sh', '-c', 'echo oops >&2; exit 4'], { timeoutMs: 5000 });
  t.same([b.stdout, b.stderr, b.exitCode, b.reason], ['', 'oops\n', 4, 'exited 4']);
  const c = await s.execKept(['pwd'], { timeoutMs: 5000, cwd: '/' });
  t.equal(c.stdout, '/\n', 'cwd is honoured');
  t.equal(seen.commands.filter((x) => x.includes('kmodvm-kept-shell')).length, 1, 'one exec channel for all three');
  const d = await s.execKept(['fail'], { timeoutMs: 5000, stdin: 'x' });
  t.equal(d.exitCode, 3, 'a command with stdin gets its own channel');
  t.equal(seen.commands.at(-1), 'fail');
  const h = await s.execKept(['sleep', '5'], { timeoutMs: 300 });
  t.same([h.timedOut, h.reason], [true, 'timed out after 0 s']);
  t.equal((await s.execKept(['echo', 'after'], { timeoutMs: 5000 })).stdout, 'after\n', 'a new kept shell after a timeout');
});

t.test('an upload sends its stream to the tar started ahead (warmUpload), and starts its own otherwise', async (t) => {
  const { port, seen } = await server(t);
  const s = await SshSession.connect({ port, privateKey: client.private, hostPublicKey: host.public, readyTimeoutMs: 5000 });
  t.teardown(() => s.close());
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-warm-'));
  writeFileSync(path.join(dir, 'm.ko'), 'module v1');
  s.warmUpload();
  s.warmUpload(); // one spare at a time
  // the spare is open once the server has seen its exec
  for (let i = 0; i < 100 && !seen.commands.length; i++) await new Promise((r) => setTimeout(r, 10));
  await new Promise((r) => setTimeout(r, 20));
  t.same(seen.commands, ['tar -x --no-same-owner -f - -C /'], 'the tar starts before there is anything to send');
  t.same(await s.uploadTrees('/root/kmodvm', [{ localDir: dir, sub: 'kernel-module' }]), ['kernel-module/m.ko']);
  t.equal(seen.commands.length, 1, 'no second exec: the stream went to the waiting tar');
  t.equal(readFileSync(path.join(unpacked(seen.tar, '/root/kmodvm'), 'kernel-module/m.ko'), 'utf8'), 'module v1');
  writeFileSync(path.join(dir, 'm.ko'), 'module v2');
  await s.uploadTrees('/root/kmodvm', [{ localDir: dir, sub: 'kernel-module' }]);
  t.equal(seen.commands.length, 2, 'the spare was used up: the next upload starts its own tar');
  t.equal(readFileSync(path.join(unpacked(seen.tar, '/root/kmodvm'), 'kernel-module/m.ko'), 'utf8'), 'module v2');
});
