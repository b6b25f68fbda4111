// Child processes: argument arrays only, a timeout on every child, and a
// result that says why it ended.
import { StringDecoder } from 'node:string_decoder';
import { execa } from 'execa';
import { quote } from 'zx/core';
import { describeEnd, type RunResult } from './end.ts';

export interface RunOptions {
  /** Kill the child after this many ms (SIGTERM, then SIGKILL 2 s later). */
  timeoutMs: number;
  cwd?: string;
  env?: Record<string, string | undefined>;
  input?: string | Buffer;
  /** Stream the child's output to ours as well as capturing it. */
  echo?: boolean;
  /** Bytes the child reads on its fd 3 (bwrap's seccomp program). */
  fd3?: Uint8Array;
  /** The child has our terminal (an interactive gdb): nothing is captured. */
  terminal?: boolean;
  /** Ends the child early (SIGTERM, then SIGKILL), as its timeout would. */
  signal?: AbortSignal;
  /** Each whole line of the child's output as it comes (stdout and stderr), besides the capture: a long build's progress. */
  onLine?: (line: string) => void;
}

/** Calls f with each whole line of a stream's chunks; the tail of a chunk waits for the next. Linear in the output. */
export function lineSplitter(f: (line: string) => void): { push: (chunk: string) => void; end: () => void } {
  let rest = '';
  return {
    push: (chunk) => {
      const parts = (rest + chunk).split('\n');
      rest = parts.pop() ?? '';
      for (const l of parts) f(l);
    },
    end: () => {
      if (rest) f(rest);
      rest = '';
    },
  };
}

/** Shell-quotes an argv for display (bash syntax, as zx prints it). */
export function shellJoin(argv: readonly string[]): string {
  return argv.map((a) => quote(a)).join(' ');
}

export async function run(cmd: string, args: readonly string[], opts: RunOptions): Promise<RunResult> {
  if (!(Number.isFinite(opts.timeoutMs) && opts.timeoutMs > 0)) {
    throw new TypeError(`Expected the \`timeoutMs\` option to be a positive number, got ${opts.timeoutMs}`);
  }
  const started = Date.now();
  const out = opts.echo ? (['pipe', 'inherit'] as const) : 'pipe';
  const stdin = opts.input === undefined ? 'ignore' : 'pipe';
  const child = execa(cmd, [...args], {
    reject: false,
    timeout: opts.timeoutMs,
    forceKillAfterDelay: 2000,
    cancelSignal: opts.signal,
    cwd: opts.cwd,
    env: opts.env,
    extendEnv: true,
    input: opts.input,
    // fd 0-2 as stdin/stdout/stderr would say, and fd 3 when asked for.
    stdio: opts.terminal
      ? opts.fd3
        ? ['inherit', 'inherit', 'inherit', opts.fd3]
        : ['inherit', 'inherit', 'inherit']
      : opts.fd3
        ? [stdin, out, out, opts.fd3]
        : [stdin, out, out],
    stripFinalNewline: false,
    maxBuffer: 256 * 1024 * 1024,
  });
  if (opts.onLine && !opts.terminal) {
    for (const s of [child.stdout, child.stderr]) {
      const lines = lineSplitter(opts.onLine);
      // A decoder of its own: the stream's encoding stays execa's.
      const utf8 = new StringDecoder('utf8');
      s?.on('data', (c: Buffer) => lines.push(utf8.write(c)));
      s?.on('end', () => {
        lines.push(utf8.end());
        lines.end();
      });
    }
  }
  const r = await child;
  const failedToStart = r.failed && r.exitCode === undefined && !r.timedOut && !r.signal && !r.isCanceled ? (r.originalMessage ?? r.shortMessage) : undefined;
  return {
    command: shellJoin([cmd, ...args]),
    exitCode: r.exitCode,
    signal: r.signal,
    timedOut: r.timedOut,
    stdout: String(r.stdout ?? ''),
    stderr: String(r.stderr ?? ''),
    durationMs: Date.now() - started,
    reason: describeEnd({ exitCode: r.exitCode, signal: r.signal, timedOut: r.timedOut, timeoutMs: opts.timeoutMs, failedToStart }),
  };
}

/** The last n lines of a text, for evidence. */
export function tail(text: string, n: number): string {
  const lines = text.replace(/\s+$/, '').split('\n');
  return lines.slice(Math.max(0, lines.length - n)).join('\n');
}
