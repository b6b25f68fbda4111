import { mkdtempSync, statSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import t from 'tap';
import { Deframer, FRAME, frame, muxExec, muxResult, serveMux } from '../../../scripts/lib/vm/mux.ts';

const sink = () => {
  const s = new PassThrough();
  let text = '';
  s.on('data', (d: Buffer) => {
    text += d.toString();
  });
  return { s, text: () => text };
};

t.test('frames survive any cut of the byte stream', async (t) => {
  const bytes = Buffer.concat([frame(FRAME.stdout, Buffer.from('hello')), frame(FRAME.stderr, Buffer.from('')), frame(FRAME.exit, Buffer.from([0, 0, 0, 3]))]);
  const got: [number, string][] = [];
  const d = new Deframer();
  for (const b of bytes) d.push(Buffer.from([b]), (ty, p) => got.push([ty, p.toString('hex')]));
  t.same(got, [
    [FRAME.stdout, Buffer.from('hello').toString('hex')],
    [FRAME.stderr, ''],
    [FRAME.exit, '00000003'],
  ]);
});

t.test('a command through the mux: its argv intact, stdin in, stdout and stderr apart, its exit code; the socket is 0600', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-mux-'));
  const sock = path.join(dir, 'mux.sock');
  const seen: string[][] = [];
  const srv = await serveMux(sock, async (argv, io) => {
    seen.push(argv);
    let input = '';
    if (io.stdin) for await (const c of io.stdin) input += c.toString();
    io.stdout.write(`out:${input}`);
    io.stderr.write('err\n');
    return 7;
  });
  t.teardown(() => srv.close());
  t.equal(statSync(sock).mode & 0o777, 0o600);
  const out = sink();
  const err = sink();
  const code = await muxExec(sock, ['sh', '-c', 'echo "$1"', 'x', 'a b'], { stdin: Readable.from([Buffer.from('piped ')]), stdout: out.s, stderr: err.s });
  t.equal(code, 7);
  t.same(seen, [['sh', '-c', 'echo "$1"', 'x', 'a b']]);
  t.equal(out.text(), 'out:piped ');
  t.equal(err.text(), 'err\n');
});

t.test("muxResult: an exec's result as SshSession.exec gives it; a command past its timeout is ended and says so; no mux is undefined", async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-mux-'));
  const sock = path.join(dir, 'mux.sock');
  const srv = await serveMux(sock, async (argv, io) => {
    if (argv[0] === 'hang') await new Promise(() => {});
    io.stdout.write('.text:0xffffffffc0000000\n');
    io.stderr.write('grep: x: Permission denied\n');
    return 2;
  });
  t.teardown(() => srv.close());
  const r = await muxResult(sock, ['sh', '-c', 'grep . *'], 5000);
  t.match(r, {
    exitCode: 2,
    timedOut: false,
    stdout: '.text:0xffffffffc0000000\n',
    stderr: 'grep: x: Permission denied\n',
    reason: 'exited 2',
    command: "sh -c 'grep . *'",
  });
  const hung = await muxResult(sock, ['hang'], 200);
  t.match(hung, { exitCode: undefined, timedOut: true, reason: 'timed out after 0 s' });
  t.equal(await muxResult(path.join(dir, 'none.sock'), ['true'], 1000), undefined);
});

t.test('no mux at the socket: undefined, and the caller connects itself', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-mux-'));
  t.equal(await muxExec(path.join(dir, 'none.sock'), ['true'], { stdout: sink().s, stderr: sink().s }), undefined);
});

t.test('a malformed request, an endless header or a frame past the cap ends that connection, never the mux (#24)', async (t) => {
  const net = await import('node:net');
  const { MAX_HEADER } = await import('../../../scripts/lib/vm/mux.ts');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-mux-bad-'));
  const sock = path.join(dir, 'mux.sock');
  const srv = await serveMux(sock, async (argv, io) => {
    io.stdout.write(argv.join(' '));
    return 0;
  });
  t.teardown(() => srv.close());
  const closedAfter = (bytes: Buffer | string): Promise<void> =>
    new Promise((resolve) => {
      const c = net.connect(sock, () => c.write(bytes));
      c.on('error', () => undefined);
      c.on('close', () => resolve());
    });
  await closedAfter('not json\n');
  await closedAfter('{"argv": "rm -rf /"}\n');
  await closedAfter('{"argv": []}\n');
  await closedAfter('x'.repeat(MAX_HEADER + 2));
  await closedAfter(Buffer.concat([Buffer.from('{"argv":["cat"],"stdin":true}\n'), Buffer.from([FRAME.stdin, 0xff, 0xff, 0xff, 0xff])]));
  const out = sink();
  const err = sink();
  t.equal(await muxExec(sock, ['echo', 'still', 'here'], { stdout: out.s, stderr: err.s }), 0, 'the mux still serves');
  t.equal(out.text(), 'echo still here');
});
