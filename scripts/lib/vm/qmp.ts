// A QMP client for the few commands the tool sends (migrate, query-migrate,
// query-status, quit): JSON lines over QEMU's unix socket. No npm package for
// QMP is kept up (qemu-qmp, node-qmp: unmaintained for years), and the
// protocol is one JSON object per line, so this stays small. parseQmpLines()
// is pure.

import { existsSync } from 'node:fs';
import net from 'node:net';
import { waitUntil } from '../core/wait.ts';

export interface QmpReply {
  return?: unknown;
  error?: { class: string; desc: string };
  event?: string;
  data?: Record<string, unknown>;
  QMP?: unknown;
}

/** The most events kept for waitEvent(): a few commands' worth. */
const EVENTS_KEPT = 200;

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

/** How long QEMU may take to answer the greeting or a command (a migration is polled, never awaited). */
export const QMP_REPLY_MS = 10_000;

export class Qmp {
  private buf = '';
  private waiting: { resolve: (r: QmpReply) => void; reject: (e: Error) => void }[] = [];
  private closed: Error | undefined;
  private events: QmpReply[] = [];
  private eventWaiters = new Set<() => void>();

  private constructor(
    private readonly sock: net.Socket,
    private readonly replyMs: number,
  ) {
    sock.setEncoding('utf8');
    sock.on('data', (d: string) => {
      const { messages, rest } = parseQmpLines(this.buf + d);
      this.buf = rest;
      // Events are not replies: the greeting, and returns and errors answer commands in order.
      for (const m of messages) {
        if (m.event === undefined) this.waiting.shift()?.resolve(m);
        else {
          this.events.push(m);
          if (this.events.length > EVENTS_KEPT) this.events.shift();
          for (const w of [...this.eventWaiters]) w();
        }
      }
    });
    const end = (e: Error): void => {
      this.closed ??= e;
      for (const w of this.waiting.splice(0)) w.reject(e);
      for (const w of [...this.eventWaiters]) w();
    };
    sock.on('error', end);
    sock.on('close', () => end(new QmpError('QMP connection closed (QEMU exited?)')));
  }

  /**
   * Connects once QEMU has made the socket (waitUntil: the deadline, and
   * QEMU alive on every round), reads the greeting and enters command mode.
   * The greeting and every command have a timeout.
   */
  static async connect(socketPath: string, o: { deadlineMs: number; alive: () => boolean; replyMs?: number }): Promise<Qmp> {
    const tryOnce = (): Promise<net.Socket | undefined> =>
      existsSync(socketPath)
        ? new Promise((resolve) => {
            const s = net.connect(socketPath);
            s.once('connect', () => resolve(s));
            s.once('error', () => resolve(undefined));
          })
        : Promise.resolve(undefined);
    const w = await waitUntil(tryOnce, { deadlineMs: o.deadlineMs, intervalMs: 10, alive: o.alive });
    if (w.end === 'dead') throw new QmpError('QEMU exited before its QMP socket was up');
    if (w.end !== 'ready') throw new QmpError(`no QMP socket at ${socketPath} within ${o.deadlineMs} ms`);
    const q = new Qmp(w.value, o.replyMs ?? QMP_REPLY_MS);
    try {
      await q.next('the greeting');
      await q.execute('qmp_capabilities');
    } catch (e) {
      q.close();
      throw e;
    }
    return q;
  }

  private next(what: string): Promise<QmpReply> {
    if (this.closed) return Promise.reject(this.closed);
    return new Promise((resolve, reject) => {
      // A late answer would be taken for the next command's: after a timeout the connection is closed.
      const timer = setTimeout(() => {
        const e = new QmpError(`QMP: no answer to ${what} within ${this.replyMs} ms`);
        this.waiting = this.waiting.filter((w) => w !== entry);
        this.closed ??= e;
        this.sock.destroy();
        reject(e);
      }, this.replyMs);
      const entry = {
        resolve: (r: QmpReply) => {
          clearTimeout(timer);
          resolve(r);
        },
        reject: (e: Error) => {
          clearTimeout(timer);
          reject(e);
        },
      };
      this.waiting.push(entry);
    });
  }

  /** Runs a command; resolves with its return value, rejects with QEMU's error. */
  async execute<T = unknown>(command: string, args?: Record<string, unknown>): Promise<T> {
    const reply = this.next(command);
    this.sock.write(JSON.stringify(args ? { execute: command, arguments: args } : { execute: command }) + '\n');
    const r = await reply;
    if (r.error) throw new QmpError(`${command}: ${r.error.class}: ${r.error.desc}`);
    return r.return as T;
  }

  /**
   * The first event named so (since connect) that match accepts, taken from
   * the kept ones; rejects at the deadline or when the connection ends.
   */
  waitEvent(name: string, match: (data: Record<string, unknown>) => boolean, ms: number): Promise<QmpReply> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        this.eventWaiters.delete(look);
        clearTimeout(timer);
      };
      const look = (): void => {
        const i = this.events.findIndex((e) => e.event === name && match(e.data ?? {}));
        if (i >= 0) {
          done();
          resolve(this.events.splice(i, 1)[0]);
        } else if (this.closed) {
          done();
          reject(this.closed);
        }
      };
      const timer = setTimeout(() => {
        done();
        reject(new QmpError(`QMP: no ${name} event within ${ms} ms`));
      }, ms);
      this.eventWaiters.add(look);
      look();
    });
  }

  /** Calls cb with each event named so, the ones kept since connect first, until the connection ends (a watcher that holds its own monitor). */
  onEvent(name: string, cb: (e: QmpReply) => void): void {
    const look = (): void => {
      for (let i = this.events.findIndex((e) => e.event === name); i >= 0; i = this.events.findIndex((e) => e.event === name)) cb(this.events.splice(i, 1)[0]);
      if (this.closed) this.eventWaiters.delete(look);
    };
    this.eventWaiters.add(look);
    look();
  }

  close(): void {
    this.sock.destroy();
  }
}
