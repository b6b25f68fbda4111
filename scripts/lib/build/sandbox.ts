// Host builds run a module's Makefile and the image's kbuild scripts: code
// others wrote (a student's module, a pull request, an imported image).
// They run under bubblewrap (Debian's bubblewrap package): the host
// read-only, only the build tree writable, a private /tmp, no network, no
// other process visible, and dead with its parent. A host that forbids
// user namespaces (Ubuntu 24.04's AppArmor default for non-root users, and
// so GitHub's runners) cannot run it: builds then go to the guest, said
// once; a host build is never run unconfined.
import { execaSync } from 'execa';

export const BWRAP = 'bwrap';

/**
 * bwrap's arguments around cmd: / read-only, the writable dirs bound
 * read-write, everything unshared. /tmp stays the host's, read-only (a
 * kbuild tree or a cache may live there); the compiler's temporary files go
 * to TMPDIR, in the first writable dir.
 */
export function sandboxArgv(cmd: string, args: readonly string[], o: { writable: readonly string[]; cwd?: string; tmp?: boolean }): string[] {
  const tmp = o.tmp !== false && o.writable[0] && `${o.writable[0]}/.kmodvm-tmp`;
  return [
    '--ro-bind',
    '/',
    '/',
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    ...o.writable.flatMap((w) => ['--bind', w, w]),
    ...(tmp ? ['--dir', tmp, '--setenv', 'TMPDIR', tmp] : []),
    '--unshare-all',
    '--die-with-parent',
    '--new-session',
    ...(o.cwd ? ['--chdir', o.cwd] : []),
    '--',
    cmd,
    ...args,
  ];
}

export type SandboxProbe = { ok: true } | { ok: false; why: string };

let probed: SandboxProbe | undefined;

/** Whether bwrap runs here (once per process: one `bwrap … true`, a few ms). */
export function sandboxUsable(run = (argv: string[]) => execaSync(BWRAP, argv, { reject: false, timeout: 10_000 })): SandboxProbe {
  if (probed) return probed;
  const r = run(sandboxArgv('true', [], { writable: [] }));
  if (r.exitCode === 0) probed = { ok: true };
  else if (r.failed && r.exitCode === undefined) probed = { ok: false, why: `bubblewrap (${BWRAP}) is not installed` };
  else probed = { ok: false, why: `bubblewrap cannot make its namespaces on this host (${String(r.stderr).trim().split('\n')[0] || `exit ${r.exitCode}`})` };
  return probed;
}
