// One ssh2 connection per run, reused for every step (a fresh handshake costs
// about 0.5 s under TCG). Key-only auth; the guest's host key is pinned.
import { readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import ssh2, { type Client, type ClientChannel, type SFTPWrapper } from 'ssh2';
import { describeEnd, shellJoin, type RunResult } from './proc.ts';

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
  stdin?: string | Buffer;
}

/** A remote command line from an argv: each argument quoted for the guest's shell. */
export function remoteCommand(argv: readonly string[], cwd?: string): string {
  const cmd = shellJoin(argv);
  return cwd ? `cd ${shellJoin([cwd])} && ${cmd}` : cmd;
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
  private constructor(private readonly client: Client) {}

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

  /** Runs a command line as given. Prefer exec(); this is for `sh -c` scripts built from quoted parts. */
  execRaw(command: string, o: ExecOptions): Promise<ExecResult> {
    const started = Date.now();
    return new Promise((resolve) => {
      let stdout = '';
      let stderr = '';
      let timedOut = false;
      let done = false;
      let ch: ClientChannel | undefined;
      const finish = (exitCode: number | undefined, signal: string | undefined, err?: string): void => {
        if (done) return;
        done = true;
        clearTimeout(timer);
        resolve({
          command, exitCode, signal, timedOut, stdout, stderr, durationMs: Date.now() - started,
          reason: err ? `could not start: ${err}` : describeEnd({ exitCode, signal, timedOut, timeoutMs: o.timeoutMs }),
        });
      };
      const timer = setTimeout(() => {
        timedOut = true;
        ch?.signal('KILL');
        ch?.close();
        finish(undefined, undefined);
      }, o.timeoutMs);
      const onChannel = (err: Error | undefined, channel: ClientChannel): void => {
        if (err) return finish(undefined, undefined, err.message);
        ch = channel;
        let code: number | undefined;
        let sig: string | undefined;
        channel.on('exit', (c: number | null, s?: string) => { code = c ?? undefined; sig = s ?? undefined; });
        channel.on('data', (d: Buffer) => { stdout += d.toString('utf8'); });
        channel.stderr.on('data', (d: Buffer) => { stderr += d.toString('utf8'); });
        channel.on('close', () => finish(code, sig));
        if (o.stdin !== undefined) channel.end(o.stdin);
        else channel.end();
      };
      try {
        this.client.exec(command, onChannel);
      } catch (e) {
        // ssh2 throws at once when the connection is already gone (a dead guest).
        finish(undefined, undefined, (e as Error).message);
      }
    });
  }

  /**
   * Runs a command with streams attached (vm:ssh -- CMD): stdin is forwarded,
   * output is written as it comes. Resolves with the exit code (255 when the
   * command died by a signal or the connection broke).
   */
  execStream(command: string, io: { stdin?: NodeJS.ReadableStream; stdout: NodeJS.WritableStream; stderr: NodeJS.WritableStream; pty?: boolean }): Promise<number> {
    return new Promise((resolve) => {
      const opts = io.pty ? { pty: { term: process.env.TERM ?? 'xterm', rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 } } : {};
      this.client.exec(command, opts, (err, ch) => {
        if (err) { io.stderr.write(`${err.message}\n`); return resolve(255); }
        let code = 255;
        ch.on('exit', (c: number | null) => { code = c ?? 255; });
        ch.on('close', () => resolve(code));
        ch.pipe(io.stdout as NodeJS.WritableStream, { end: false });
        ch.stderr.pipe(io.stderr as NodeJS.WritableStream, { end: false });
        if (io.stdin) io.stdin.pipe(ch); else ch.end();
      });
    });
  }

  /** An interactive login shell on a real pty that follows the terminal's size. Resolves with the shell's exit code. */
  shell(): Promise<number> {
    return new Promise((resolve) => {
      const stdin = process.stdin;
      const win = { term: process.env.TERM ?? 'xterm-256color', rows: process.stdout.rows ?? 24, cols: process.stdout.columns ?? 80 };
      this.client.shell(win, (err, ch) => {
        if (err) { process.stderr.write(`${err.message}\n`); return resolve(255); }
        const resize = (): void => { ch.setWindow(process.stdout.rows ?? 24, process.stdout.columns ?? 80, 0, 0); };
        process.stdout.on('resize', resize);
        if (stdin.isTTY) stdin.setRawMode(true);
        stdin.resume();
        stdin.pipe(ch);
        ch.pipe(process.stdout, { end: false });
        ch.stderr.pipe(process.stderr, { end: false });
        let code = 0;
        ch.on('exit', (c: number | null) => { code = c ?? 255; });
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

  private sftp(): Promise<SFTPWrapper> {
    return new Promise((resolve, reject) => this.client.sftp((e, s) => (e ? reject(e) : resolve(s))));
  }

  /** Copies the regular files of localDir (recursively, minus skip()) into remoteDir. Returns the relative paths sent. */
  async upload(localDir: string, remoteDir: string, skip: (rel: string) => boolean = () => false): Promise<string[]> {
    const sftp = await this.sftp();
    const sent: string[] = [];
    const call = <T>(f: (cb: (e: Error | null | undefined, v?: T) => void) => void): Promise<T | undefined> =>
      new Promise((res, rej) => f((e, v) => (e ? rej(e) : res(v))));
    const mkdirp = async (dir: string): Promise<void> => {
      await call<void>((cb) => sftp.mkdir(dir, (e) => cb(e && (e as { code?: number }).code !== 4 ? e : null))).catch(async () => {
        await call((cb) => sftp.stat(dir, cb));
      });
    };
    const walk = async (rel: string): Promise<void> => {
      const here = path.join(localDir, rel);
      await mkdirp(path.posix.join(remoteDir, rel));
      for (const n of (await readdir(here)).sort()) {
        const r = rel ? `${rel}/${n}` : n;
        if (skip(r)) continue;
        const st = await stat(path.join(localDir, r));
        if (st.isDirectory()) await walk(r);
        else if (st.isFile()) {
          const data = await readFile(path.join(localDir, r));
          const remote = path.posix.join(remoteDir, r);
          await call<void>((cb) => sftp.writeFile(remote, data, { mode: st.mode & 0o777 }, (e) => cb(e)));
          // Keep the host's mtime, so make in the guest rebuilds only what changed.
          await call<void>((cb) => sftp.utimes(remote, st.atime, st.mtime, (e) => cb(e)));
          sent.push(r);
        }
      }
    };
    try {
      await walk('');
    } finally {
      sftp.end();
    }
    return sent;
  }

  close(): void {
    this.client.end();
  }
}
