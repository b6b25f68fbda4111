// The host's end of kmodvm-device (#25): a test asks for a device event at
// its own moment (`kmodvm-device unplug edu0`, `plug edu0`) over kmodvm's
// virtio-serial port, whose chardev is a socket beside the QMP socket. The
// guest is not trusted: a request is one short line, of exactly two verbs
// and one of the suite's own hot device ids; anything else is refused, and
// nothing of QMP is passed on. Requests are taken one at a time, and each
// is answered with one line. What a test asked for is told to the run
// (onEvent), and a suite device a test unplugged is plugged again after it.
import net from 'node:net';
import type { CheckResult } from '../verdict/model.ts';
import type { GuestDevices } from './devices-plug.ts';

/** The longest request line taken; a longer one is refused and the connection's input dropped to the next newline. */
export const MAX_REQUEST = 128;

export type Request = { verb: 'plug' | 'unplug'; id: string } | { refused: string };

/** One request line, judged against the suite's hot device ids (pure). */
export function parseRequest(line: string, allowed: ReadonlySet<string>): Request {
  const m = /^(plug|unplug) ([A-Za-z][\w.-]{0,63})$/.exec(line);
  if (!m) return { refused: 'a request is "plug ID" or "unplug ID"' };
  if (!allowed.has(m[2])) return { refused: `${m[2]} is not a hot-plugged device of this suite` };
  return { verb: m[1] as 'plug' | 'unplug', id: m[2] };
}

/** Splits a byte stream into lines, each at most `max` characters: a longer one is given as undefined once, and its rest skipped. */
export class LineSplitter {
  private buf = '';
  private skipping = false;
  constructor(private readonly max: number) {}

  push(chunk: string): (string | undefined)[] {
    const out: (string | undefined)[] = [];
    this.buf += chunk;
    for (;;) {
      const nl = this.buf.indexOf('\n');
      if (nl < 0) break;
      const line = this.buf.slice(0, nl).replace(/\r$/, '');
      this.buf = this.buf.slice(nl + 1);
      if (this.skipping) this.skipping = false;
      else out.push(line.length > this.max ? undefined : line);
    }
    if (this.buf.length > this.max) {
      if (!this.skipping) out.push(undefined);
      this.skipping = true;
      this.buf = '';
    }
    return out;
  }
}

export class DeviceChannel {
  private queue: Promise<void> = Promise.resolve();
  /** The suite devices a request unplugged, to plug again after the test. */
  private readonly out = new Set<string>();
  /** What was asked since the last drain(). */
  private events: CheckResult[] = [];

  private constructor(
    private readonly sock: net.Socket,
    private readonly devices: GuestDevices,
    private readonly allowed: ReadonlySet<string>,
    private readonly onEvent: (r: CheckResult) => void = () => undefined,
  ) {
    const lines = new LineSplitter(MAX_REQUEST);
    sock.setEncoding('utf8');
    sock.on('data', (chunk: string) => {
      for (const line of lines.push(chunk)) this.queue = this.queue.then(() => this.serve(line));
    });
    sock.on('error', () => undefined);
  }

  /** Connects to QEMU's end (it listens from its start): a readiness check with a deadline. */
  static async open(socketPath: string, devices: GuestDevices, allowed: ReadonlySet<string>, deadlineMs: number, onEvent?: (r: CheckResult) => void) {
    const sock = await new Promise<net.Socket>((resolve, reject) => {
      const s = net.createConnection(socketPath);
      const timer = setTimeout(() => {
        s.destroy();
        reject(new Error(`no device-request socket ${socketPath} within ${deadlineMs} ms`));
      }, deadlineMs);
      s.once('connect', () => {
        clearTimeout(timer);
        resolve(s);
      });
      s.once('error', (e) => {
        clearTimeout(timer);
        reject(e);
      });
    });
    return new DeviceChannel(sock, devices, allowed, onEvent);
  }

  private async serve(line: string | undefined): Promise<void> {
    const t0 = Date.now();
    const req = line === undefined ? { refused: `a request is at most ${MAX_REQUEST} characters` } : parseRequest(line, this.allowed);
    const shown = line === undefined ? '(too long)' : JSON.stringify(line.slice(0, 80));
    if ('refused' in req) {
      this.reply(`refused: ${req.refused}`);
      this.event({ name: `kmodvm-device ${shown}`, ok: true, durationMs: Date.now() - t0, message: `refused: ${req.refused}` });
      return;
    }
    const r = req.verb === 'plug' ? ((await this.devices.plug([req.id])).at(-1) ?? okPresent(req.id)) : await this.devices.unplug(req.id);
    if (r.ok && req.verb === 'unplug') this.out.add(req.id);
    if (r.ok && req.verb === 'plug') this.out.delete(req.id);
    this.reply(r.ok ? `ok ${req.verb} ${req.id}` : `failed: ${r.message ?? r.name}`);
    this.event({ ...r, name: `kmodvm-device ${req.verb} ${req.id}`, durationMs: Date.now() - t0 });
  }

  private event(r: CheckResult): void {
    this.events.push(r);
    this.onEvent(r);
  }

  /** What the guest asked for since the last call, once the requests in hand are answered. */
  async drain(): Promise<CheckResult[]> {
    await this.queue;
    const e = this.events;
    this.events = [];
    return e;
  }

  private reply(text: string): void {
    if (!this.sock.destroyed) this.sock.write(`${text.replace(/\n/g, ' ')}\n`);
  }

  /** Waits for the requests in hand, then plugs again each of these (the suite's own) that a request unplugged. */
  async restore(suiteIds: readonly string[]): Promise<CheckResult[]> {
    await this.queue;
    const back = suiteIds.filter((id) => this.out.has(id));
    for (const id of back) this.out.delete(id);
    return back.length ? this.devices.plug(back) : [];
  }

  close(): void {
    this.sock.destroy();
  }
}

const okPresent = (id: string): CheckResult => ({ name: `plug ${id}`, ok: true, durationMs: 0, message: 'already in' });
