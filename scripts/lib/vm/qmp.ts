// A QMP client for the few commands the tool sends (migrate, query-migrate,
// query-status, quit): JSON lines over QEMU's unix socket. No npm package for
// QMP is kept up (qemu-qmp, node-qmp: unmaintained for years), and the
// protocol is one JSON object per line, so this stays small. parseQmpLines()
// is pure.
import net from 'node:net';
import { existsSync } from 'node:fs';

export interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
  QMP?: unknown;
}

/** Splits a buffer into whole JSON lines; the rest waits for more bytes. */
export function parseQmpLines(buf: string): { messages: QmpReply[]; rest: string } {
  const messages: QmpReply[] = [];
  let rest = buf;
  for (let i = rest.indexOf('\n'); i >= 0; i = rest.indexOf('\n')) {
    const line = rest.slice(0, i).trim();
    rest = rest.slice(i + 1);
    if (line) messages.push(JSON.parse(line) as QmpReply);
  }
  return { messages, rest };
}

export class QmpError extends Error {}

export class Qmp {
  private buf = '';
  private waiting: { resolve: (r: QmpReply) => void; reject: (e: Error) => void }[] = [];
  private closed: Error | undefined;

  private constructor(private readonly sock: net.Socket) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      const { messages, rest } = parseQmpLines(this.buf + d);
      this.buf = rest;
      // Events are not replies: the greeting, and returns and errors answer commands in order.
      for (const m of messages) if (m.event === undefined) this.waiting.shift()?.resolve(m);
    });
    const end = (e: Error): void => {
      this.closed ??= e;
      for (const w of this.waiting.splice(0)) w.reject(e);
    };
    sock.on('error', end);
    sock.on('close', () => end(new QmpError('QMP connection closed (QEMU exited?)')));
  }

  /**
   * Connects once QEMU has made the socket, checking against the deadline
   * and, on every round, that QEMU is alive; reads the greeting and enters
   * command mode.
   */
  static async connect(socketPath: string, o: { deadlineMs: number; alive: () => boolean }): Promise<Qmp> {
    const deadline = Date.now() + o.deadlineMs;
    for (;;) {
      if (!o.alive()) throw new QmpError('QEMU exited before its QMP socket was up');
      if (existsSync(socketPath)) {
        const sock = await new Promise<net.Socket | undefined>((resolve) => {
          const s = net.connect(socketPath);
          s.once('connect', () => resolve(s));
          s.once('error', () => resolve(undefined));
        });
        if (sock) {
          const q = new Qmp(sock);
          await q.next();
          await q.execute('qmp_capabilities');
          return q;
        }
      }
      if (Date.now() > deadline) throw new QmpError(`no QMP socket at ${socketPath} within ${o.deadlineMs} ms`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  private next(): Promise<QmpReply> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => this.waiting.push({ resolve, reject }));
  }

  /** Runs a command; resolves with its return value, rejects with QEMU's error. */
  async execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const reply = this.next();
    this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    const r = await reply;
    if (r.error) throw new QmpError(`${command}: ${r.error.class}: ${r.error.desc}`);
    return r.return as T;
  }

  close(): void {
    this.sock.destroy();
  }
}
