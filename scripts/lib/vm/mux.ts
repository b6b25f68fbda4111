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
import { describeEnd, posixJoin, type RunResult } from '../core/end.ts';
import { Capped } from '../guest/collect.ts';

export const MUX_SOCK = 'mux.sock';
export const MUX_PID = 'mux.pid';

export const FRAME = { stdin: 0, stdout: 1, stderr: 2, exit: 3, stdinEnd: 4 } as const;

export function frame(type: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const h = Buffer.alloc(5);
  h[0] = type;
  h.writeUInt32BE(payload.length, 1);
  return Buffer.concat([h, payload]);
}

/** The longest request line and frame the mux takes: an argv and a chunk of a stream are far smaller. */
export const MAX_HEADER = 1024 * 1024;
export const MAX_FRAME = 16 * 1024 * 1024;

/** A request line: {"argv": [strings], "stdin": boolean}, or undefined. */
export function parseRequest(line: string): { argv: string[]; stdin: boolean } | undefined {
  try {
    const r = JSON.parse(line) as { argv?: unknown; stdin?: unknown };
    const ok = Array.isArray(r?.argv) && r.argv.length > 0 && r.argv.every((a) => typeof a === 'string') && typeof (r.stdin ?? false) === 'boolean';
    return ok ? { argv: r.argv as string[], stdin: Boolean(r.stdin) } : undefined;
  } catch {
    return undefined;
  }
}

/** Splits a byte stream into frames; what is left waits for more bytes. Linear: it only ever cuts at the front. */
export class Deframer {
  private buf: Buffer = Buffer.alloc(0);
  /** False when a frame says it is longer than MAX_FRAME (the stream is then not ours to read). */
  push(chunk: Buffer, on: (type: number, payload: Buffer) => void): boolean {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    let at = 0;
    while (this.buf.length - at >= 5) {
      const len = this.buf.readUInt32BE(at + 1);
      if (len > MAX_FRAME) return false;
      if (this.buf.length - at < 5 + len) break;
      on(this.buf[at], this.buf.subarray(at + 5, at + 5 + len));
      at += 5 + len;
    }
    this.buf = this.buf.subarray(at);
    return true;
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
    const onFrame = (t: number, p: Buffer): unknown => (t === FRAME.stdin ? stdin.write(p) : t === FRAME.stdinEnd ? stdin.end() : undefined);
    c.on('data', (d: Buffer) => {
      if (started) return deframer.push(d, onFrame) || c.destroy();
      header += d.toString('latin1');
      const nl = header.indexOf('\n');
      // A request that is not one line of JSON with an argv, or one past the cap, ends this connection, not the mux.
      if (nl < 0) return header.length > MAX_HEADER ? c.destroy() : undefined;
      const req = parseRequest(header.slice(0, nl));
      if (!req) return c.destroy();
      started = true;
      const rest = Buffer.from(header.slice(nl + 1), 'latin1');
      if (rest.length && !deframer.push(rest, onFrame)) return c.destroy();
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

/**
 * An exec of the kept connection, as SshSession.exec gives it (a result with
 * both streams, and a timeout that ends it), for kmodvm gdb's few commands:
 * no SSH handshake. Undefined when there is no mux to ask.
 */
export async function muxResult(sock: string, argv: readonly string[], timeoutMs: number): Promise<RunResult | undefined> {
  const t0 = Date.now();
  const out = new Capped();
  const err = new Capped();
  const sink = (c: Capped) => new PassThrough().on('data', (d: Buffer) => c.push(d));
  const ac = new AbortController();
  const timer = setTimeout(() => ac.abort(), timeoutMs);
  const code = await muxExec(sock, argv, { stdout: sink(out), stderr: sink(err), signal: ac.signal }).finally(() => clearTimeout(timer));
  if (code === undefined && !ac.signal.aborted) return undefined;
  const timedOut = ac.signal.aborted;
  const exitCode = timedOut ? undefined : code;
  return {
    command: posixJoin(argv),
    exitCode,
    signal: undefined,
    timedOut,
    stdout: out.text(),
    stderr: err.text(),
    durationMs: Date.now() - t0,
    reason: describeEnd({ exitCode, timedOut, timeoutMs }),
  };
}

/** Runs argv through the mux at sock; undefined when there is no mux to ask (the caller connects itself), or when signal ended it first. */
export function muxExec(
  sock: string,
  argv: readonly string[],
  io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; signal?: AbortSignal },
): Promise<number | undefined> {
  return new Promise((resolve) => {
    let answered = false;
    const c = net.connect(sock);
    io.signal?.addEventListener('abort', () => {
      c.destroy();
      resolve(undefined);
    });
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
