// Commands on a kept guest shell. Every exec channel makes sshd fork a
// session, chroot it and start the login shell: about 90 ms a command under
// TCG before the command itself starts. A shell kept open on one channel runs
// each command in a subshell and marks its end on both streams: about 5 ms.
// The steps of a run (insmod, app, rmmod, dmesg, taint) keep their own
// records, exit codes and timeouts; only the session start is shared.
//
// What a command sees is what it sees on an exec channel: the same shell
// (sh -c), the same environment, stdin from /dev/null, and a subshell of its
// own, so a `cd` or a variable does not outlive it. Differences, by design:
// a command killed by a signal is told from its exit status (128 + n), so a
// program that exits with, say, 139 reads as killed by SIGSEGV; and output
// written by a background process it left running may land in the next
// command's record (on an exec channel that process would hold the channel
// open until the timeout instead).
import { randomBytes } from 'node:crypto';
import { constants } from 'node:os';
import { describeEnd, type RunResult } from '../core/end.ts';
import { Capped, KEEP_BYTES, MarkerScan } from './collect.ts';

/**
 * The guest side, run as `sh -c KEPT_SHELL kmodvm-kept-shell`: the nonce is
 * its first input line (never an argument: /proc/PID/cmdline is readable by
 * every guest process, and a nonce read there forges a command's end); then
 * one command line per input line, each in a subshell without the nonce and
 * with stdin from /dev/null; after it, "\x1e NONCE STATUS\n" on stdout and
 * "\x1e NONCE\n" on stderr.
 */
export const KEPT_SHELL = [
  'IFS= read -r n || exit',
  'while IFS= read -r line; do',
  '  (unset n; eval "$line") </dev/null',
  '  rc=$?',
  '  printf \'\\036%s %s\\n\' "$n" "$rc"',
  '  printf \'\\036%s\\n\' "$n" >&2',
  'done',
].join('\n');

export const keptShellArgv = (): string[] => ['sh', '-c', KEPT_SHELL, 'kmodvm-kept-shell'];

/** A command's end as an exec channel reports it: an exit code, or the signal that killed it (status 128 + n, as sh reports). */
export function statusToEnd(status: number): { exitCode?: number; signal?: string } {
  if (status > 128) {
    const name = Object.entries(constants.signals).find(([, n]) => n === status - 128)?.[0];
    if (name) return { signal: name };
  }
  return { exitCode: status };
}

/**
 * Collects one command's output from a kept shell's two streams, up to both
 * markers, in time linear in the bytes (guest/collect.ts): 100 MB of output
 * costs what its copy costs. What is kept is capped, with a note.
 */
export class Framer {
  private readonly outMark: Buffer;
  private readonly errMark: Buffer;
  private out!: Capped;
  private err!: Capped;
  private outScan!: MarkerScan;
  private errScan!: MarkerScan;

  constructor(
    nonce: string,
    private readonly cap = KEEP_BYTES,
  ) {
    this.outMark = Buffer.from(`\x1e${nonce} `);
    this.errMark = Buffer.from(`\x1e${nonce}\n`);
    this.reset();
  }

  private reset(): void {
    this.out = new Capped(this.cap);
    this.err = new Capped(this.cap);
    this.outScan = new MarkerScan(this.outMark);
    this.errScan = new MarkerScan(this.errMark);
  }

  push(stream: 'out' | 'err', chunk: Buffer): void {
    if (stream === 'out') {
      this.out.push(chunk);
      this.outScan.push(chunk);
    } else {
      this.err.push(chunk);
      this.errScan.push(chunk);
    }
  }

  /** The output so far of a command that has not ended (for a timeout's evidence). */
  partial(): { stdout: string; stderr: string } {
    return { stdout: this.out.text(), stderr: this.err.text() };
  }

  /** The command's output and exit status once both markers are in; the framer is then empty for the next command. */
  take(): { stdout: string; stderr: string; status: number } | undefined {
    const o = this.outScan.found;
    const e = this.errScan.found;
    if (!o || !e) return undefined;
    const nl = o.after.indexOf(0x0a);
    if (nl < 0) return undefined;
    const status = Number(o.after.subarray(0, nl).toString('latin1'));
    const r = { stdout: this.out.text(o.at), stderr: this.err.text(e.at), status };
    // What followed the markers (a background process's output) is the next command's.
    this.reset();
    if (o.after.length > nl + 1) this.push('out', o.after.subarray(nl + 1));
    if (e.after.length) this.push('err', e.after);
    return r;
  }
}

/** The channel a kept shell runs on: an ssh2 ClientChannel has this shape; so can a local child, for tests. */
export interface ShellChannel {
  write(s: string): unknown;
  on(ev: 'data', f: (d: Buffer) => void): unknown;
  on(ev: 'close', f: () => void): unknown;
  stderr: { on(ev: 'data', f: (d: Buffer) => void): unknown };
  signal?(name: string): unknown;
  close(): unknown;
}

interface Kept {
  ch: ShellChannel;
  framer: Framer;
  closed: boolean;
  wake?: () => void;
}

/**
 * A pool of kept shells on one connection: a command takes an idle shell or
 * opens one, so commands started at the same time each get their own. A
 * shell whose command timed out is closed and never reused.
 */
export class KeptShells {
  private readonly idle: Kept[] = [];
  private readonly all = new Set<Kept>();

  constructor(
    private readonly open: (argv: string[]) => Promise<ShellChannel>,
    private readonly nonce = randomBytes(8).toString('hex'),
  ) {}

  private async get(): Promise<Kept> {
    for (let k = this.idle.pop(); k; k = this.idle.pop()) if (!k.closed) return k;
    return this.start();
  }

  private async start(): Promise<Kept> {
    const ch = await this.open(keptShellArgv());
    ch.write(`${this.nonce}\n`);
    const k: Kept = { ch, framer: new Framer(this.nonce), closed: false };
    ch.on('data', (d) => {
      k.framer.push('out', d);
      k.wake?.();
    });
    ch.stderr.on('data', (d) => {
      k.framer.push('err', d);
      k.wake?.();
    });
    ch.on('close', () => {
      k.closed = true;
      this.all.delete(k);
      k.wake?.();
    });
    this.all.add(k);
    return k;
  }

  /**
   * Opens shells until n are open, while nothing waits for them (a run warms
   * two while the host builds: the kernel log and the taint are read at the
   * same time later). Resolves when they are open; a failure to open is left
   * to the command that would have used the shell.
   */
  async warm(n: number): Promise<void> {
    const opening: Promise<void>[] = [];
    for (let i = this.all.size; i < n; i++) {
      opening.push(
        this.start().then(
          (k) => {
            this.idle.push(k);
          },
          () => undefined,
        ),
      );
    }
    await Promise.all(opening);
  }

  /**
   * Runs one command line (no newline in it) and resolves with how it ended,
   * as an exec channel's result. The deadline covers opening a shell too: a
   * guest that stopped answering never opens one.
   */
  run(command: string, timeoutMs: number): Promise<RunResult> {
    if (command.includes('\n')) return Promise.reject(new TypeError('a kept shell takes one line: run a command with a newline on its own exec channel'));
    const started = Date.now();
    const base = { command, stdout: '', stderr: '', exitCode: undefined, signal: undefined, timedOut: false };
    return new Promise((resolve) => {
      let k: Kept | undefined;
      let done = false;
      const finish = (r: Omit<RunResult, 'durationMs'>): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        if (k) k.wake = undefined;
        resolve({ ...r, durationMs: Date.now() - started });
      };
      const timer = setTimeout(() => {
        const sofar = k?.framer.partial() ?? {};
        if (k) this.discard(k);
        finish({ ...base, ...sofar, timedOut: true, reason: describeEnd({ timedOut: true, timeoutMs }) });
      }, timeoutMs);
      this.get().then(
        (got) => {
          k = got;
          if (done) return this.discard(got); // opened after the deadline: not used
          got.wake = () => {
            const r = got.framer.take();
            if (!r && !got.closed) return;
            if (!r) return finish({ ...base, reason: 'ended without an exit status: the guest shell closed' });
            this.idle.push(got);
            const end = statusToEnd(r.status);
            finish({ ...base, ...end, stdout: r.stdout, stderr: r.stderr, reason: describeEnd({ ...end, timedOut: false }) });
          };
          got.ch.write(`${command}\n`);
        },
        (e: Error) => finish({ ...base, reason: `could not start: ${e.message}` }),
      );
    });
  }

  private discard(k: Kept): void {
    this.all.delete(k);
    k.closed = true;
    k.ch.signal?.('KILL');
    k.ch.close();
  }

  /** Closes every kept shell (the connection's end closes them too). */
  closeAll(): void {
    for (const k of [...this.all]) this.discard(k);
    this.idle.length = 0;
  }
}
