// The pure parts of a child's result, for the modules that must not load
// execa to start (the guest session: `kmodvm ssh -- true` answers in about
// half a second). proc.ts re-exports them.

export interface RunResult {
  command: string;
  exitCode: number | undefined;
  signal: string | undefined;
  timedOut: boolean;
  stdout: string;
  stderr: string;
  durationMs: number;
  /** One phrase: "exited 0", "exited 2", "timed out after 30 s", "killed by SIGKILL", "could not start: …". */
  reason: string;
}

/**
 * Quotes an argv for any POSIX sh (the guest's dash among them): plain words
 * stay as they are, everything else goes in single quotes, with each ' as
 * '\''. Unlike bash's $'…' (what zx's quote() prints), dash understands it.
 */
export function posixJoin(argv: readonly string[]): string {
  // A first word with = in it would be a variable assignment to the shell (A=1 cmd), not the command: quoted.
  return argv.map((a, i) => (/^[\w@%+=:,./-]+$/.test(a) && !(i === 0 && a.includes('=')) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

export function describeEnd(r: { exitCode?: number; signal?: string; timedOut: boolean; timeoutMs?: number; failedToStart?: string }): string {
  if (r.failedToStart) return `could not start: ${r.failedToStart}`;
  if (r.timedOut) return `timed out after ${Math.round((r.timeoutMs ?? 0) / 1000)} s`;
  if (r.signal) return `killed by ${r.signal}`;
  // An SSH channel that closed before its command's exit status came: the guest (or the connection) went away.
  if (r.exitCode === undefined) return 'ended without an exit status: the connection to it was lost (did the guest die?)';
  return `exited ${r.exitCode}`;
}
