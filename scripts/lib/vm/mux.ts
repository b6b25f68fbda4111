// One SSH connection per instance, kept by a small process that `kmodvm up`
// starts beside it (`kmodvm mux`), for `kmodvm ssh -- CMD`: an SSH handshake
// with a TCG guest costs about 0.18 s, and node loading ssh2 more. The
// client asks over a unix socket in the instance's directory (0700; the
// socket 0600). The protocol is one JSON line with the argv, then frames:
// a type byte (0 stdin, 1 stdout, 2 stderr, 3 exit, 4 stdin's end), a
// 4-byte length, the bytes. The argv reaches the guest exactly as an
// exec channel would take it (remoteCommand). No mux, or one that does not
// answer: ssh connects itself, as before.
import { chmodSync } from 'node:fs';
import net from 'node:net';
import { PassThrough, type Writable } from 'node:stream';

export const MUX_SOCK = 'mux.sock';
export const MUX_PID = 'mux.pid';

export const FRAME = { stdin: 0, stdout: 1, stderr: 2, exit: 3, stdinEnd: 4 } as const;

export function frame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** Splits a byte stream into frames; what is left waits for more bytes. Linear: it only ever cuts at the front. */
export class Deframer {
  private buf: Buffer = Buffer.alloc(0);
  push(chunk: Buffer, on: (type: number, payload: Buffer) => void): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    while (this.buf.length - at >= 5) {
      const len = this.buf.readUInt32BE(at + 1);
      if (this.buf.length - at < 5 + len) break;
      on(this.buf[at], this.buf.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    }
    this.buf = this.buf.subarray(at);
  }
}

type Exec = (argv: string[], io: { stdin?: NodeJS.ReadableStream; stdout: Writable; stderr: Writable }) => Promise<number>;

/** Serves exec requests on sock with exec (the instance's kept SSH session). Gives the server, to close. */
export function serveMux(sock: string, exec: Exec): Promise<net.Server> {
  const srv = net.createServer((c) => {
    let header = '';
    let started = false;
    const stdin = new PassThrough();
    const deframer = new Deframer();
    const out = (type: number) => new PassThrough().on('data', (d: Buffer) => c.write(frame(type, d)));
    c.on('data', (d: Buffer) => {
      if (started) return deframer.push(d, (t, p) => (t === FRAME.stdin ? stdin.write(p) : t === FRAME.stdinEnd ? stdin.end() : undefined));
      header += d.toString('latin1');
      const nl = header.indexOf('\n');
      if (nl < 0) return;
      started = true;
      const req = JSON.parse(header.slice(0, nl)) as { argv: string[]; stdin: boolean };
      const rest = Buffer.from(header.slice(nl + 1), 'latin1');
      if (rest.length) deframer.push(rest, (t, p) => (t === FRAME.stdin ? stdin.write(p) : t === FRAME.stdinEnd ? stdin.end() : undefined));
      const stdout = out(FRAME.stdout);
      const stderr = out(FRAME.stderr);
      exec(req.argv, { stdin: req.stdin ? stdin : undefined, stdout, stderr })
        .then((code) => {
          const b = Buffer.alloc(4);
          b.writeInt32BE(code);
          c.end(frame(FRAME.exit, b));
        })
        .catch(() => c.destroy());
    });
    c.on('error', () => undefined);
  });
  return new Promise((resolve, reject) => {
    srv.once('error', reject);
    srv.listen(sock, () => {
      chmodSync(sock, 0o600);
      resolve(srv);
    });
  });
}

/** Runs argv through the mux at sock; undefined when there is no mux to ask (the caller connects itself). */
export function muxExec(
  sock: string,
  argv: readonly string[],
  io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream },
): Promise<number | undefined> {
  return new Promise((resolve) => {
    let answered = false;
    const c = net.connect(sock);
    const deframer = new Deframer();
    c.once('error', () => resolve(answered ? 255 : undefined));
    c.on('connect', () => {
      c.write(`${JSON.stringify({ argv, stdin: Boolean(io.stdin) })}\n`);
      io.stdin?.on('data', (d: Buffer) => c.write(frame(FRAME.stdin, d)));
      io.stdin?.on('end', () => c.write(frame(FRAME.stdinEnd)));
    });
    c.on('data', (d: Buffer) => {
      answered = true;
      deframer.push(d, (t, p) => {
        if (t === FRAME.stdout) io.stdout.write(p);
        else if (t === FRAME.stderr) io.stderr.write(p);
        else if (t === FRAME.exit) resolve(p.readInt32BE(0));
      });
    });
    c.on('close', () => resolve(answered ? 255 : undefined));
  });
}
