// Fresh SSH keys for a seat that imported an image (issue 18.1): a new client
// key and a new guest host key, written into the lean initrd, whose sshd is
// the one the default profile logs in to (early-sshd.ts). So no two seats
// of a lab room share a private key for that. The archive's own keys stay
// in shared-keys/ for the root file system's sshd (the systemd profile, your
// own kernel): rewriting them inside the compressed ext4 image is left
// (docs/image.md).
import { chmod, mkdtemp, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KmodvmError } from '../core/errors.ts';
import { run } from '../core/proc.ts';
import { mkdirInside, readRegular, replaceInside, UnsafePath } from '../core/tree-fs.ts';
import { ed25519KeyPair, imageFiles, SHARED_KEYS } from './image.ts';
import { listTree } from './initrd.ts';

const KEY_MAX = 64 * 1024;

/** A link in the archive's tree where a key goes: the archive is refused (exit 4), nothing written. */
async function guard(f: () => Promise<void>): Promise<void> {
  await f().catch((e) => {
    if (!(e instanceof UnsafePath)) throw e;
    throw new KmodvmError('image', `the archive is refused: ${e.message}`, {
      hint: 'an image from kmodvm export has no such link; export it again on the machine you trust',
    });
  });
}

export async function rekeySeat(dir: string, log: (l: string) => void): Promise<void> {
  const files = imageFiles(dir);
  const shared = path.join(dir, SHARED_KEYS);
  // The image came in an archive: nothing is written through a link it holds (core/tree-fs.ts).
  await guard(async () => {
    await mkdirInside(dir, shared);
    await chmod(shared, 0o700);
    await replaceInside(dir, path.join(shared, 'id_ed25519'), await readRegular(files.clientKey, KEY_MAX), 0o600);
    await replaceInside(dir, path.join(shared, 'host_ed25519.pub'), await readRegular(files.hostPub, KEY_MAX));
  });
  const seat = `kmodvm-seat-${os.hostname()}`;
  const client = ed25519KeyPair(seat);
  const host = ed25519KeyPair(`${seat}-guest`);
  const work = await mkdtemp(path.join(dir, '.rekey-'));
  try {
    const x = await run('cpio', ['-i', '-d', '--quiet', '--no-absolute-filenames', '-F', files.initrdLean], { cwd: work, timeoutMs: 120_000 });
    if (x.exitCode !== 0)
      throw new KmodvmError('image', `cannot unpack ${files.initrdLean} to give this seat its own keys (${x.reason})`, { evidence: x.stderr });
    if (!(await stat(path.join(work, 'usr/sbin/sshd')).catch(() => undefined))) throw new KmodvmError('image', `${files.initrdLean} has no early sshd`);
    // The initrd came in the archive too: an etc/ssh that is a link to the host's /etc/ssh is refused, not written through.
    await guard(async () => {
      await replaceInside(work, path.join(work, 'etc/ssh/ssh_host_ed25519_key'), host.private, 0o600);
      await replaceInside(work, path.join(work, 'etc/ssh/ssh_host_ed25519_key.pub'), `${host.public}\n`);
      await replaceInside(work, path.join(work, 'root/.ssh/authorized_keys'), `${client.public}\n`, 0o600);
      await chmod(path.join(work, 'root/.ssh'), 0o700);
    });
    const out = `${files.initrdLean}.rekey`;
    const c = await run('cpio', ['--create', '--format=newc', '--quiet', '--owner=0:0', '-O', out], {
      cwd: work,
      input: `${(await listTree(work)).join('\n')}\n`,
      timeoutMs: 120_000,
    });
    if (c.exitCode !== 0) throw new KmodvmError('image', `cpio failed (${c.reason})`, { evidence: c.stderr });
    await rename(out, files.initrdLean);
  } finally {
    await rm(work, { recursive: true, force: true });
  }
  await guard(async () => {
    await replaceInside(dir, files.clientKey, client.private, 0o600);
    await replaceInside(dir, `${files.clientKey}.pub`, `${client.public}\n`);
    await replaceInside(dir, files.hostPub, `${host.public}\n`);
  });
  log("import: this seat has its own SSH keys for the default (lean) guest; the systemd profile keeps the archive's (docs/image.md)");
}
