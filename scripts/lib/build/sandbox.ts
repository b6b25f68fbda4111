// Host builds run a module's Makefile and the image's kbuild scripts: code
// others wrote (a student's module, a pull request, an imported image).
// They run under bubblewrap (Debian's bubblewrap package) in a root of
// their own: the toolchain (/usr and its /bin, /lib links, the few /etc
// files the loader and the alternatives need) and the kernel tree read-only,
// only the build tree writable, an empty /tmp, no $HOME, /run or
// $XDG_RUNTIME_DIR, an environment of a fixed list, a seccomp filter that
// refuses unix sockets (seccomp.ts), no network, no other process visible,
// and dead with its parent. A host that forbids user namespaces (Ubuntu
// 24.04's AppArmor default for non-root users, and so GitHub's runners)
// cannot run it: builds then go to the guest, said once; a host build is
// never run unconfined.
import { lstatSync, readlinkSync } from 'node:fs';
import { execaSync } from 'execa';
import type { RunResult } from '../core/end.ts';
import { type RunOptions, run } from '../core/proc.ts';
import { seccompProgram } from './seccomp.ts';

export const BWRAP = 'bwrap';

/** The top-level entries a toolchain lives in: bound read-only where they are directories, made again where they are links (merged /usr). */
const TOOLCHAIN = ['/usr', '/bin', '/sbin', '/lib', '/lib32', '/lib64', '/libx32'];
/** The /etc files a compiler, make and perl read: the loader's cache, the alternatives' links, the user and group names. */
const ETC = ['/etc/alternatives', '/etc/ld.so.cache', '/etc/ld.so.conf', '/etc/ld.so.conf.d', '/etc/passwd', '/etc/group', '/etc/nsswitch.conf'];
const PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';
/**
 * The host variables a build gets (every other one is cleared): the locale,
 * and what kbuild itself reads from the environment. They are part of a
 * host build's key (host-kbuild.ts), so changing one rebuilds.
 */
export const BUILD_ENV = [
  'LANG',
  'LC_ALL',
  'LC_MESSAGES',
  'ARCH',
  'CROSS_COMPILE',
  'LLVM',
  'KCFLAGS',
  'KCPPFLAGS',
  'KAFLAGS',
  'KBUILD_VERBOSE',
  'KBUILD_BUILD_TIMESTAMP',
  'KBUILD_BUILD_USER',
  'KBUILD_BUILD_HOST',
  'SOURCE_DATE_EPOCH',
];

/** The values of BUILD_ENV set here, in order. */
export function buildEnv(env: NodeJS.ProcessEnv = process.env): [string, string][] {
  return BUILD_ENV.flatMap((k) => (env[k] !== undefined ? [[k, env[k]!] as [string, string]] : []));
}

/** The fd bwrap reads the seccomp program from: 3 for a run, 0 (stdin) for the synchronous probe. */
const SECCOMP_FD = 3;

function toolchainMounts(exists: (p: string) => 'dir' | 'link' | undefined): string[] {
  const out: string[] = [];
  for (const p of TOOLCHAIN) {
    const kind = exists(p);
    if (kind === 'link') out.push('--symlink', readlinkSync(p), p);
    else if (kind === 'dir') out.push('--ro-bind', p, p);
  }
  for (const p of ETC) out.push('--ro-bind-try', p, p);
  return out;
}

const kindOf = (p: string): 'dir' | 'link' | undefined => {
  const s = (() => {
    try {
      return lstatSync(p);
    } catch {
      return undefined;
    }
  })();
  return s?.isSymbolicLink() ? 'link' : s?.isDirectory() ? 'dir' : undefined;
};

/**
 * bwrap's arguments around cmd. The readable dirs (the kernel tree, a .ko to
 * read) are bound read-only, the writable dirs read-write; the compiler's
 * temporary files go to TMPDIR, in the first writable dir.
 */
export function sandboxArgv(
  cmd: string,
  args: readonly string[],
  o: {
    writable: readonly string[];
    readable?: readonly string[];
    cwd?: string;
    tmp?: boolean;
    seccompFd?: number;
    env?: [string, string][];
    /** A session of its own (default), so it cannot push input into our terminal; an interactive gdb keeps ours, for Ctrl-C. */
    newSession?: boolean;
  },
): string[] {
  const tmp = o.tmp !== false && o.writable[0] && `${o.writable[0]}/.kmodvm-tmp`;
  const env = o.env ?? buildEnv();
  return [
    ...toolchainMounts(kindOf),
    '--dev',
    '/dev',
    '--proc',
    '/proc',
    '--tmpfs',
    '/tmp',
    ...(o.readable ?? []).flatMap((r) => ['--ro-bind', r, r]),
    ...o.writable.flatMap((w) => ['--bind', w, w]),
    '--clearenv',
    '--setenv',
    'PATH',
    PATH,
    '--setenv',
    'HOME',
    '/tmp',
    ...env.flatMap(([k, v]) => ['--setenv', k, v]),
    ...(tmp ? ['--dir', tmp, '--setenv', 'TMPDIR', tmp] : []),
    '--seccomp',
    String(o.seccompFd ?? SECCOMP_FD),
    '--unshare-all',
    '--die-with-parent',
    ...(o.newSession === false ? [] : ['--new-session']),
    ...(o.cwd ? ['--chdir', o.cwd] : []),
    '--',
    cmd,
    ...args,
  ];
}

export type SandboxOptions = Parameters<typeof sandboxArgv>[2];

/** Runs cmd in the sandbox: bwrap, its arguments, and the seccomp program on its fd 3. */
export function runSandboxed(cmd: string, args: readonly string[], o: SandboxOptions, ro: RunOptions): Promise<RunResult> {
  const program = seccompProgram();
  if (!program) throw new Error(`no seccomp filter for ${process.arch}: sandboxUsable() says so first`);
  return run(BWRAP, sandboxArgv(cmd, args, o), { ...ro, fd3: program });
}

export type SandboxProbe = { ok: true } | { ok: false; why: string };

let probed: SandboxProbe | undefined;

/** Whether bwrap runs here with the filter (once per process: one `bwrap … true`, a few ms). */
export function sandboxUsable(run = (argv: string[], input: Uint8Array) => execaSync(BWRAP, argv, { reject: false, timeout: 10_000, input })): SandboxProbe {
  if (probed) return probed;
  const program = seccompProgram();
  if (!program) {
    probed = { ok: false, why: `kmodvm has no seccomp filter for this architecture (${process.arch})` };
    return probed;
  }
  const r = run(sandboxArgv('true', [], { writable: [], seccompFd: 0 }), program);
  if (r.exitCode === 0) probed = { ok: true };
  else if (r.failed && r.exitCode === undefined) probed = { ok: false, why: `bubblewrap (${BWRAP}) is not installed` };
  else probed = { ok: false, why: `bubblewrap cannot make its namespaces on this host (${String(r.stderr).trim().split('\n')[0] || `exit ${r.exitCode}`})` };
  return probed;
}
