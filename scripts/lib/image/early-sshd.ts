// sshd in the lean initrd. Under TCG the boot's user-space part was serial:
// load ext4 (0.4–0.8 s), mount the root, switch_root, start sshd from the
// cold disk (0.5–0.9 s: 28 shared libraries). With sshd, its libraries and
// its configuration copied from the image into the initrd, the initrd starts
// sshd at once, from RAM, while the root disk's modules load and the root
// mounts; the guest is ready when both are done. Sessions run in the Debian
// root: sshd's ChrootDirectory puts every session (commands, shells, sftp)
// in /newroot, where the initrd has mounted the root disk with /proc, /sys,
// /dev, /run and /tmp. The files come out of the image's own tree with the
// image's own tar (symlinks resolved inside it), so the binaries and the
// libraries are the image's. lddPaths() is pure.

import { existsSync } from 'node:fs';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KmodvmError } from '../core/errors.ts';
import { run } from '../core/proc.ts';

/** The programs the early sshd needs: sshd, and OpenSSH ≥ 9.8's per-connection helpers when the image has them. */
export const SSHD_PROGRAMS = ['/usr/sbin/sshd', '/usr/lib/openssh/sshd-session', '/usr/lib/openssh/sshd-auth'];

/** The shared objects in ldd's output (absolute paths); throws on a "not found". */
export function lddPaths(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const l = line.trim();
    if (!l) continue;
    if (/=> not found/.test(l)) throw new Error(`ldd: ${l}`);
    const m = /=> (\/\S+) \(/.exec(l) ?? /^(\/\S+) \(/.exec(l);
    if (m) out.push(m[1]);
  }
  return out;
}

/** The initrd's own /etc files: root (shell /bin/sh, home /root, both resolved in the chroot) and sshd's privilege-separation user. */
export function earlyEtc(): Map<string, string> {
  return new Map([
    ['etc/passwd', 'root:x:0:0:root:/root:/bin/sh\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n'],
    ['etc/group', 'root:x:0:\nnogroup:x:65534:\n'],
    ['etc/nsswitch.conf', 'passwd: files\ngroup: files\nshadow: files\n'],
    // Read before the image's own sshd_config.d files (first match wins): every session in the Debian root.
    // No login history in the initrd: nothing to print, and no "Couldn't stat /var/log/lastlog" on every shell.
    [
      'etc/ssh/sshd_config.d/00-kmodvm-initrd.conf',
      '# Written into the lean initrd only (scripts/lib/image/early-sshd.ts).\nChrootDirectory /newroot\nPrintLastLog no\n',
    ],
  ]);
}

/** Copies sshd, its libraries and its configuration from the rootfs into the initrd's staging tree. */
export async function stageEarlySshd(rootfs: string, stage: string): Promise<string[]> {
  const programs = SSHD_PROGRAMS.filter((p) => existsSync(path.join(rootfs, p)));
  const libs = new Set<string>();
  for (const p of programs) {
    const r = await run('chroot', [rootfs, '/usr/bin/ldd', p], { timeoutMs: 60_000 });
    if (r.exitCode !== 0) throw new KmodvmError('image', `ldd ${p} in the image failed (${r.reason})`, { evidence: r.stderr });
    for (const l of lddPaths(r.stdout)) libs.add(l);
  }
  const files = [
    ...programs,
    ...libs,
    '/etc/ssh/sshd_config',
    '/etc/ssh/sshd_config.d',
    '/etc/ssh/ssh_host_ed25519_key',
    '/etc/ssh/ssh_host_ed25519_key.pub',
    '/root/.ssh/authorized_keys',
  ];
  // The image's tar, run in the image: -h resolves the symlinks there (/lib64/ld-linux… points into /lib).
  const archive = 'tmp/kmodvm-early-sshd.tar';
  const tar = await run('chroot', [rootfs, 'tar', '-c', '-h', '-f', `/${archive}`, ...files.map((f) => f.slice(1))], { timeoutMs: 60_000, cwd: '/' });
  if (tar.exitCode !== 0) throw new KmodvmError('image', `copying sshd out of the image failed (${tar.reason})`, { evidence: tar.stderr });
  const x = await run('tar', ['-x', '-f', path.join(rootfs, archive), '-C', stage], { timeoutMs: 60_000 });
  await rm(path.join(rootfs, archive), { force: true });
  if (x.exitCode !== 0) throw new KmodvmError('image', `unpacking sshd into the initrd failed (${x.reason})`, { evidence: x.stderr });
  for (const [rel, text] of earlyEtc()) {
    await mkdir(path.dirname(path.join(stage, rel)), { recursive: true });
    await writeFile(path.join(stage, rel), text);
  }
  for (const d of ['run', 'var/empty']) await mkdir(path.join(stage, d), { recursive: true });
  return [...programs, ...libs];
}
