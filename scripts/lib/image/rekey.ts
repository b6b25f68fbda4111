// Fresh SSH keys for a seat that imported an image (issue 18.1): a new client
// key and a new guest host key, written into the lean initrd, whose sshd is
// the one the default profile logs in to (early-sshd.ts). So no two seats
// of a lab room share a private key for that. The archive's own keys stay
// in shared-keys/ for the root file system's sshd (the systemd profile, your
// own kernel): rewriting them inside the compressed ext4 image is left
// (docs/image.md).
import { chmod, mkdir, mkdtemp, rename, rm, stat, writeFile, copyFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { KmodvmError } from '../core/errors.ts';
import { run } from '../core/proc.ts';
import { ed25519KeyPair, imageFiles, SHARED_KEYS } from './image.ts';
import { listTree } from './initrd.ts';

export async function rekeySeat(dir: string, log: (l: string) => void): Promise<void> {
  const files = imageFiles(dir);
  const shared = path.join(dir, SHARED_KEYS);
  await mkdir(shared, { recursive: true, mode: 0o700 });
  await copyFile(files.clientKey, path.join(shared, 'id_ed25519'));
  await chmod(path.join(shared, 'id_ed25519'), 0o600);
  await copyFile(files.hostPub, path.join(shared, 'host_ed25519.pub'));
  const seat = `kmodvm-seat-${os.hostname()}`;
  const client = ed25519KeyPair(seat);
  const host = ed25519KeyPair(`${seat}-guest`);
  const work = await mkdtemp(path.join(dir, '.rekey-'));
  try {
    const x = await run('cpio', ['-i', '-d', '--quiet', '--no-absolute-filenames', '-F', files.initrdLean], { cwd: work, timeoutMs: 120_000 });
    if (x.exitCode !== 0)
      throw new KmodvmError('image', `cannot unpack ${files.initrdLean} to give this seat its own keys (${x.reason})`, { evidence: x.stderr });
    if (!(await stat(path.join(work, 'usr/sbin/sshd')).catch(() => undefined))) throw new KmodvmError('image', `${files.initrdLean} has no early sshd`);
    await mkdir(path.join(work, 'etc/ssh'), { recursive: true });
    await mkdir(path.join(work, 'root/.ssh'), { recursive: true, mode: 0o700 });
    await writeFile(path.join(work, 'etc/ssh/ssh_host_ed25519_key'), host.private, { mode: 0o600 });
    await writeFile(path.join(work, 'etc/ssh/ssh_host_ed25519_key.pub'), `${host.public}\n`);
    await writeFile(path.join(work, 'root/.ssh/authorized_keys'), `${client.public}\n`, { mode: 0o600 });
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
  await writeFile(files.clientKey, client.private, { mode: 0o600 });
  await writeFile(`${files.clientKey}.pub`, `${client.public}\n`);
  await writeFile(files.hostPub, `${host.public}\n`);
  log("import: this seat has its own SSH keys for the default (lean) guest; the systemd profile keeps the archive's (docs/image.md)");
}
