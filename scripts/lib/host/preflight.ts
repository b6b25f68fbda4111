// Host preflight: which tools are missing, which Debian/Ubuntu packages bring
// them, and what to do about it. decide() is pure; the rest looks at the host.
import { accessSync, constants } from 'node:fs';
import path from 'node:path';
import { which } from 'zx';
import { KmodvmError } from '../core/errors.ts';
import { run, shellJoin } from '../core/proc.ts';
import { sh } from '../core/sh.ts';

export interface Requirement {
  /** A command name looked up on PATH (and the sbin directories), or an absolute file path. */
  probe: string;
  pkg: string;
  why: string;
}

/** What vm:test needs on the host. */
export const REQUIREMENTS: readonly Requirement[] = [
  { probe: 'qemu-system-x86_64', pkg: 'qemu-system-x86', why: 'runs the guest' },
  { probe: 'mmdebstrap', pkg: 'mmdebstrap', why: 'builds the Debian root file system' },
  { probe: '/usr/share/keyrings/debian-archive-keyring.gpg', pkg: 'debian-archive-keyring', why: "verifies Debian's packages (Ubuntu hosts lack it)" },
  { probe: 'mkfs.ext4', pkg: 'e2fsprogs', why: 'turns the root file system into an ext4 image' },
  { probe: 'cpio', pkg: 'cpio', why: 'archives the lean initrd' },
  { probe: 'qemu-img', pkg: 'qemu-utils', why: 'compresses the root file system into a qcow2 image' },
  { probe: 'xz', pkg: 'xz-utils', why: 'extracts the uncompressed kernel (Debian 12)' },
  { probe: 'zstd', pkg: 'zstd', why: 'extracts the uncompressed kernel (Debian 13)' },
  { probe: 'lz4', pkg: 'lz4', why: "extracts the uncompressed kernel (Debian's cloud flavour)" },
  { probe: 'bwrap', pkg: 'bubblewrap', why: "confines host builds: the module's Makefile runs with the host read-only and no network" },
];

const SEARCH_EXTRA = ['/usr/local/sbin', '/usr/sbin', '/sbin'];

/** A command on PATH (and the sbin directories, which a user's PATH often lacks) through zx's which; a data file by its absolute path. */
export function findTool(probe: string, envPath = process.env.PATH ?? ''): string | undefined {
  if (path.isAbsolute(probe)) {
    try {
      accessSync(probe, constants.R_OK);
      return probe;
    } catch {
      return undefined;
    }
  }
  return which.sync(probe, { path: [...envPath.split(':').filter(Boolean), ...SEARCH_EXTRA].join(':'), nothrow: true }) ?? undefined;
}

export function missingRequirements(reqs: readonly Requirement[], find: (probe: string) => string | undefined = findTool): Requirement[] {
  return reqs.filter((r) => !find(r.probe));
}

export type Decision = { action: 'none' } | { action: 'install'; commands: string[][] } | { action: 'tell'; command: string };

/** What to do about missing packages: nothing, install them (root or passwordless sudo), or tell the user the one command. */
export function decide(missing: readonly Requirement[], who: { root: boolean; passwordlessSudo: boolean }): Decision {
  if (missing.length === 0) return { action: 'none' };
  const pkgs = [...new Set(missing.map((m) => m.pkg))];
  const install = ['apt-get', 'install', '-y', '-q', '--no-install-recommends', ...pkgs];
  if (who.root || who.passwordlessSudo) {
    const sudo = who.root ? [] : ['sudo', '-n', '--preserve-env=DEBIAN_FRONTEND'];
    return {
      action: 'install',
      commands: [
        [...sudo, 'apt-get', 'update', '-q'],
        [...sudo, ...install],
      ],
    };
  }
  return { action: 'tell', command: `sudo ${shellJoin(['apt-get', 'update'])} && sudo ${shellJoin(install)}` };
}

export async function hasPasswordlessSudo(): Promise<boolean> {
  if (!findTool('sudo')) return false;
  return (await sh`sudo -n true`).exitCode === 0;
}

/** Checks the host and installs what is missing when it may. Throws KmodvmError('setup') otherwise. */
export async function preflight(log: (line: string) => void, reqs: readonly Requirement[] = REQUIREMENTS): Promise<void> {
  const missing = missingRequirements(reqs);
  if (missing.length === 0) return;
  const root = process.getuid?.() === 0;
  const d = decide(missing, { root, passwordlessSudo: root ? false : await hasPasswordlessSudo() });
  const list = missing.map((m) => `${m.probe} (package ${m.pkg}: ${m.why})`).join('\n');
  if (d.action === 'tell') {
    throw new KmodvmError('setup', 'host tools are missing, and installing them needs root', {
      evidence: list,
      hint: `run this once, then try again:\n  ${d.command}`,
    });
  }
  if (d.action !== 'install') return;
  log(`preflight: installing ${missing.map((m) => m.pkg).join(' ')} with apt-get`);
  for (const argv of d.commands) {
    log(`preflight: running ${shellJoin(argv)}`);
    const r = await run(argv[0], argv.slice(1), { timeoutMs: 900_000, env: { DEBIAN_FRONTEND: 'noninteractive' } });
    if (r.exitCode !== 0) {
      throw new KmodvmError('setup', `${shellJoin(argv)} failed (${r.reason})`, {
        evidence: `${r.stdout}\n${r.stderr}`.trim().split('\n').slice(-15).join('\n'),
        hint: 'fix apt on this host, then try again',
      });
    }
  }
  const still = missingRequirements(reqs);
  if (still.length) throw new KmodvmError('setup', 'tools are still missing after apt-get install', { evidence: still.map((m) => m.probe).join('\n') });
}
