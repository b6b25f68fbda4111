// One ssh2 connection per run, reused for every step (a fresh handshake costs
// about 0.5 s under TCG). Key-only auth; the guest's host key is pinned.
import ssh2, { type Client, type ClientChannel } from 'ssh2';
import { describeEnd, posixJoin, type RunResult } from '../core/end.ts';
import { Capped } from './collect.ts';
import { KeptShells } from './kept-shell.ts';
import { stageTrees, UNTAR, type UploadPart } from './upload.ts';

export interface ConnectOptions {
  host?: string;
  port: number;
  user?: string;
  privateKey: string | Buffer;
  /** The guest's public host key, "ssh-ed25519 AAAA…". Any other key is refused. */
  hostPublicKey: string;
  /** Handshake deadline for this attempt, ms. */
  readyTimeoutMs: number;
}

/** A guest command ends the way a host child does: the same result shape. */
export type ExecResult = RunResult;

export interface ExecOptions {
  timeoutMs: number;
  /** Run in this guest directory. */
  cwd?: string;
  /** What the command reads: bytes, or a stream piped to it (an upload's tar). */
  stdin?: string | Buffer | NodeJS.ReadableStream;
}

/** A remote command line from an argv: each argument quoted for the guest's shell. */
export function remoteCommand(argv: readonly string[], cwd?: string): string {
  const cmd = posixJoin(argv);
  return cwd ? `cd ${posixJoin([cwd])} && ${cmd}` : cmd;
}

/** The raw key blob of an OpenSSH public key line. */
export function publicKeyBlob(line: string): Buffer {
  const parsed = ssh2.utils.parseKey(line.trim());
  if (parsed instanceof Error) throw parsed;
  const key = Array.isArray(parsed) ? parsed[0] : parsed;
  return key.getPublicSSH();
}

export class HostKeyMismatch extends Error {
  override name = 'HostKeyMismatch';
}

export class SshSession {
  private ended = false;
  /** What uploadTrees sent on this connection: remote path → sha256 of the contents. */
  private readonly sentHashes = new Map<string, string>();
  /** A tar started ahead for the next upload (warmUpload). */
  private spareTar?: { ch?: ClientChannel; closed: boolean; ready?: Promise<unknown> };
  /** Shells kept open for execKept(). */
  private readonly shells = new KeptShells((argv) => this.openChannel(remoteCommand(argv)));

  private constructor(private readonly client: Client) {
    client.on('close', () => {
      this.ended = true;
    });
  }

  /** The connection is gone (the guest died, or close() was called). */
  get closed(): boolean {
    return this.ended;
  }

  static connect(o: ConnectOptions): Promise<SshSession> {
    const pinned = publicKeyBlob(o.hostPublicKey);
    return new Promise((resolve, reject) => {
      const client = new ssh2.Client();
      let mismatch = false;
      client
        .on('ready', () => resolve(new SshSession(client)))
        .on('error', (e) => {
          client.end();
          reject(mismatch ? new HostKeyMismatch('the guest presented a host key other than the pinned one') : e);
        })
        .connect({
          host: o.host ?? '127.0.0.1',
          port: o.port,
          username: o.user ?? 'root',
          privateKey: o.privateKey,
          readyTimeout: o.readyTimeoutMs,
          hostVerifier: (key: Buffer) => {
            mismatch = !pinned.equals(key);
            return !mismatch;
          },
          algorithms: { serverHostKey: ['ssh-ed25519'] },
        });
    });
  }

  exec(argv: readonly string[], o: ExecOptions): Promise<ExecResult> {
    return this.execRaw(remoteCommand(argv, o.cwd), o);
  }

  /**
   * exec() on a kept guest shell (kept-shell.ts): the same result, without
   * the ~90 ms session start of a fresh channel under TCG. For the steps of
   * a run; a command with stdin, or a newline in it, gets its own channel.
   */
  execKept = (argv: readonly string[], o: ExecOptions): Promise<ExecResult> => this.execKeptLine(posixJoin(argv), o);
  /** A shell line of quoted parts (guest/step-marks.ts), on a kept shell. */
  execKeptLine(line: string, o: ExecOptions): Promise<ExecResult> {
    const command = o.cwd ? `${remoteCommand(['cd', o.cwd])} && ${line}` : line;
    if (o.stdin !== undefined || command.includes('\n')) return this.execRaw(command, o);
    return this.shells.run(command, o.timeoutMs);
  }

  /** Opens kept shells up to n in the background (see KeptShells.warm). */
  warmShells(n: number): Promise<void> {
    return this.shells.warm(n);
  }

  /** Runs a command line as given. Prefer exec(); this is for `sh -c` scripts built from quoted parts. */
  execRaw(command: string, o: ExecOptions): Promise<ExecResult> {
    return this.execOn(command, o);
  }

  /** execRaw on `opened`, a channel already running command (warmUpload's), or on a new one. */
  private execOn(command: string, o: ExecOptions, opened?: ClientChannel): Promise<ExecResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      // Linear in the bytes, capped with a note, and multi-byte characters split across chunks decode whole (collect.ts).
      const stdout = new Capped();
      const stderr = new Capped();
      let timedOut = false;
      let done = false;
      let ch: ClientChannel | undefined;
      const finish = (exitCode: number | undefined, signal: string | undefined, err?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({
          command,
          exitCode,
          signal,
          timedOut,
          stdout: stdout.text(),
          stderr: stderr.text(),
          durationMs: Date.now() - started,
          reason: err ? `could not start: ${err}` : describeEnd({ exitCode, signal, timedOut, timeoutMs: o.timeoutMs }),
        });
      };
      const timer = setTimeout(() => {
        timedOut = true;
        ch?.signal('KILL');
        ch?.close();
        finish(undefined, undefined);
      }, o.timeoutMs);
      const onChannel = (channel: ClientChannel): void => {
        ch = channel;
        let code: number | undefined;
        let sig: string | undefined;
        channel.on('exit', (c: number | null, s?: string) => {
          code = c ?? undefined;
          sig = s ?? undefined;
        });
        channel.on('data', (d: Buffer) => stdout.push(d));
        channel.stderr.on('data', (d: Buffer) => stderr.push(d));
        channel.on('close', () => finish(code, sig));
        if (o.stdin === undefined) channel.end();
        else if (typeof o.stdin === 'string' || Buffer.isBuffer(o.stdin)) channel.end(o.stdin);
        else o.stdin.pipe(channel);
      };
      (opened ? Promise.resolve(opened) : this.openChannel(command)).then(
        (ch) => onChannel(ch),
        (e: Error) => finish(undefined, undefined, e.message),
      );
    });
  }

  /**
   * Runs a command with streams attached (vm:ssh -- CMD): stdin is forwarded,
   * output is written as it comes. Resolves with the exit code (255 when the
   * command died by a signal or the connection broke).
   */
  execStream(
    command: string,
    io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; pty?: boolean },
  ): Promise<number> {
    return new Promise((resolve) => {
      const opts = io.pty ? { pty: { term: process.env.TERM ?? 'xterm', rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 } } : {};
      this.client.exec(command, opts, (err, ch) => {
        if (err) {
          io.stderr.write(`${err.message}\n`);
          return resolve(255);
        }
        let code = 255;
        ch.on('exit', (c: number | null) => {
          code = c ?? 255;
        });
        ch.on('close', () => resolve(code));
        ch.pipe(io.stdout as NodeJS.WritableStream, { end: false });
        ch.stderr.pipe(io.stderr as NodeJS.WritableStream, { end: false });
        if (io.stdin) io.stdin.pipe(ch);
        else ch.end();
      });
    });
  }

  /** An interactive login shell on a real pty that follows the terminal's size. Resolves with the shell's exit code. */
  shell(): Promise<number> {
    return new Promise((resolve) => {
      const stdin = process.stdin;
      const win = { term: process.env.TERM ?? 'xterm-256color', rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 };
      // root's login shell is dash (fast for commands); people get bash.
      this.client.exec('exec /bin/bash -l', { pty: win }, (err, ch) => {
        if (err) {
          process.stderr.write(`${err.message}\n`);
          return resolve(255);
        }
        const resize = (): void => {
          ch.setWindow(process.stdout.rows ?? 24, process.stdout.columns ?? 80, 0, 0);
        };
        process.stdout.on('resize', resize);
        if (stdin.isTTY) stdin.setRawMode(true);
        stdin.resume();
        stdin.pipe(ch);
        ch.pipe(process.stdout, { end: false });
        ch.stderr.pipe(process.stderr, { end: false });
        let code = 0;
        ch.on('exit', (c: number | null) => {
          code = c ?? 255;
        });
        ch.on('close', () => {
          process.stdout.off('resize', resize);
          stdin.unpipe(ch);
          if (stdin.isTTY) stdin.setRawMode(false);
          stdin.pause();
          resolve(code);
        });
      });
    });
  }

  /** Copies the regular files of localDir (recursively, minus skip()) into remoteDir. Returns the relative paths sent. */
  upload(localDir: string, remoteDir: string, skip: (rel: string) => boolean = () => false, timeoutMs = 60_000): Promise<string[]> {
    return this.uploadTrees(remoteDir, [{ localDir, sub: '.', skip }], timeoutMs);
  }

  /**
   * Copies several host directories into subdirectories of remoteBase, as one
   * tar stream on one exec channel: an SFTP session costs a subsystem start
   * and a round trip per file, which under TCG adds up to a second. tar keeps
   * the host's mtimes and modes, so make in the guest rebuilds only what
   * changed. sub is a plain directory name, or '.' for remoteBase itself.
   * Returns the paths sent, relative to remoteBase. skipUnchanged: leave out
   * the files this connection already sent with the same contents (the watch
   * loop's guest keeps its files between cycles); nothing to send, no exec.
   * leftOut collects the files named but not sent (not a regular file inside
   * its part's directory: upload.ts).
   */
  async uploadTrees(
    remoteBase: string,
    parts: readonly UploadPart[],
    timeoutMs = 60_000,
    o: { skipUnchanged?: boolean; leftOut?: string[] } = {},
  ): Promise<string[]> {
    const staged = await stageTrees(remoteBase, parts);
    o.leftOut?.push(...staged.leftOut);
    try {
      const sent = o.skipUnchanged ? staged.files.filter((f) => this.sentHashes.get(`${remoteBase}/${f}`) !== staged.hashes.get(f)) : staged.files;
      if (!sent.length) return sent;
      const tar = await staged.tar(sent, timeoutMs);
      if (this.spareTar && !this.spareTar.ch && !this.spareTar.closed) await this.spareTar.ready;
      const spare = this.spareTar?.ch && !this.spareTar.closed ? this.spareTar.ch : undefined;
      if (spare) this.spareTar = undefined;
      const r = await this.execOn(remoteCommand(UNTAR), { timeoutMs, stdin: tar.stream }, spare);
      await tar.done; // the host's tar failing is its own error, whatever the guest's tar then said
      if (r.exitCode !== 0) throw new Error(`upload to the guest's ${remoteBase} failed (${r.reason}): ${r.stderr.trim()}`);
      for (const f of sent) this.sentHashes.set(`${remoteBase}/${f}`, staged.hashes.get(f)!);
      return sent;
    } finally {
      await staged.cleanup();
    }
  }

  /**
   * Starts the guest's tar for the next upload now, while the host still
   * builds: that upload then sends its stream to a tar that is already
   * waiting, and skips the ~0.1 s session start under TCG (1.4 s on the debug kernel). An upload that comes
   * while it starts waits for it, rather than start a second; one after it died starts its own.
   */
  warmUpload(): void {
    if ((this.spareTar && !this.spareTar.closed) || this.ended) return;
    const spare: { ch?: ClientChannel; closed: boolean; ready?: Promise<unknown> } = { closed: false };
    this.spareTar = spare;
    spare.ready = this.openChannel(remoteCommand(UNTAR)).then(
      (ch) => {
        ch.on('close', () => {
          spare.closed = true;
        });
        spare.ch = ch;
      },
      () => {
        spare.closed = true;
      },
    );
  }

  /** An exec channel running command; ssh2 throws at once when the connection is gone, which rejects. */
  private openChannel(command: string): Promise<ClientChannel> {
    return new Promise((resolve, reject) => {
      try {
        this.client.exec(command, (err, ch) => (err ? reject(err) : resolve(ch)));
      } catch (e) {
        reject(e as Error);
      }
    });
  }

  close(): void {
    this.shells.closeAll();
    this.client.end();
  }
}
