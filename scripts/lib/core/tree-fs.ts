// Files in a tree that code under test has written (a host build's tree, a
// suite's sources): it may have left a symlink, a FIFO or a device where a
// file was, or turned a directory into a link to anywhere. kmodvm, outside
// the sandbox, never follows one of those: it writes only regular files it
// has just created, below directories that are real directories inside the
// tree, and reads only regular files, up to a size.
import { constants } from 'node:fs';
import { chmod, lstat, mkdir, open, realpath, rename, rm, stat, utimes } from 'node:fs/promises';
import path from 'node:path';

export class UnsafePath extends Error {
  constructor(
    readonly file: string,
    why: string,
  ) {
    super(`${file}: ${why}`);
    this.name = 'UnsafePath';
  }
}

/** Each directory from root down to dir (dir inside root) is a real directory, made where missing; never a link followed. */
export async function mkdirInside(root: string, dir: string): Promise<void> {
  const rel = path.relative(root, dir);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw new UnsafePath(dir, `not inside ${root}`);
  let at = root;
  for (const part of rel ? rel.split(path.sep) : []) {
    at = path.join(at, part);
    const s = await lstat(at).catch(() => undefined);
    if (!s) await mkdir(at).catch((e: NodeJS.ErrnoException) => (e.code === 'EEXIST' ? undefined : Promise.reject(e)));
    const now = s ?? (await lstat(at));
    if (now.isSymbolicLink()) throw new UnsafePath(at, 'is a symlink, not a directory: kmodvm does not write through it');
    if (!now.isDirectory()) throw new UnsafePath(at, 'is not a directory');
  }
}

/** p is inside root, and no directory between them is a link (or not a directory); what p itself is, is not looked at. */
export async function assertInside(root: string, p: string): Promise<void> {
  const rel = path.relative(root, p);
  if (!rel || rel.startsWith('..') || path.isAbsolute(rel)) throw new UnsafePath(p, `not inside ${root}`);
  let at = root;
  for (const part of rel.split(path.sep).slice(0, -1)) {
    at = path.join(at, part);
    const s = await lstat(at);
    if (s.isSymbolicLink()) throw new UnsafePath(at, 'is a symlink, not a directory: kmodvm does not go through it');
    if (!s.isDirectory()) throw new UnsafePath(at, 'is not a directory');
  }
}

/**
 * Writes data to file as a new regular file, atomically: a temporary file
 * beside it is created with O_EXCL | O_NOFOLLOW (so it is the file kmodvm
 * made) and renamed over whatever was there, which is replaced, never
 * opened: a link is replaced, not followed.
 */
export async function replaceInside(root: string, file: string, data: string | Uint8Array, mode = 0o644): Promise<void> {
  await mkdirInside(root, path.dirname(file));
  const tmp = `${file}.kmodvm-tmp-${process.pid}`;
  await rm(tmp, { force: true });
  const h = await open(tmp, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, mode);
  try {
    await h.writeFile(data);
  } finally {
    await h.close();
  }
  await rename(tmp, file).catch(async (e) => {
    await rm(tmp, { force: true });
    throw e;
  });
}

/**
 * A regular file's bytes, opened without following a link and without
 * blocking on a FIFO, refused past maxBytes: a path code under test could
 * have made anything of.
 */
export async function readRegular(file: string, maxBytes: number): Promise<Buffer> {
  const h = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK).catch((e: NodeJS.ErrnoException) =>
    Promise.reject(e.code === 'ELOOP' ? new UnsafePath(file, 'is a symlink: kmodvm does not read through it') : e),
  );
  try {
    const s = await h.stat();
    if (!s.isFile()) throw new UnsafePath(file, 'is not a regular file');
    if (s.size > maxBytes) throw new UnsafePath(file, `is ${s.size} bytes, more than the ${maxBytes} kmodvm reads`);
    return await h.readFile();
  } finally {
    await h.close();
  }
}

/** readRegular of a file that must be inside root (assertInside). */
export async function readInside(root: string, file: string, maxBytes: number): Promise<Buffer> {
  await assertInside(root, file);
  return readRegular(file, maxBytes);
}

/** The largest source file kmodvm copies into a build tree. */
export const SOURCE_MAX = 1024 * 2 ** 20;

/** The mode a copied source gets: its permission bits, never set-id or sticky (a suite's shell test stays executable). */
export const sourceMode = (mode: number): number => mode & 0o755;

/** A source file into a build tree (copyInside), keeping its times (make compares them) and its execute bits. */
export async function copySource(root: string, from: string, to: string): Promise<void> {
  const s = await stat(from);
  await copyInside(root, from, to, SOURCE_MAX, sourceMode(s.mode));
  // Exactly these bits, whatever the umask: syncTree compares them. `to` is the regular file just renamed in, in a locked tree.
  await chmod(to, sourceMode(s.mode));
  await utimes(to, s.atime, s.mtime);
}

/** Copies a regular file (read as readRegular does) to a new file inside root (as replaceInside writes). */
export async function copyInside(root: string, from: string, to: string, maxBytes: number, mode?: number): Promise<void> {
  await replaceInside(root, to, await readRegular(from, maxBytes), mode);
}

/**
 * Writes a file whose name a suite gives (an expected transcript under
 * --update): the real directory it lands in must be inside root (a link
 * on the way is followed only while it stays inside), the directories
 * missing are made there, and the file itself is opened with O_NOFOLLOW and
 * must be a regular file. Returns the real path written.
 */
export async function writeUnder(root: string, file: string, data: string): Promise<string> {
  const realRoot = await realpath(root);
  // The nearest directory that exists, by its real path, then the rest made below it.
  let have = path.dirname(file);
  const missing: string[] = [];
  while (!(await lstat(have).catch(() => undefined))) {
    missing.unshift(path.basename(have));
    have = path.dirname(have);
  }
  let dir = await realpath(have);
  if (!inside(realRoot, dir)) throw new UnsafePath(file, `its directory is really ${dir}, outside ${realRoot}`);
  for (const m of missing) {
    dir = path.join(dir, m);
    await mkdir(dir);
  }
  const real = path.join(dir, path.basename(file));
  const h = await open(real, constants.O_WRONLY | constants.O_CREAT | constants.O_NOFOLLOW | constants.O_NONBLOCK, 0o644).catch((e: NodeJS.ErrnoException) =>
    Promise.reject(
      e.code === 'ELOOP' ? new UnsafePath(file, 'is a symlink: kmodvm does not write through it') : e.code === 'ENXIO' ? new UnsafePath(file, 'is a FIFO') : e,
    ),
  );
  try {
    if (!(await h.stat()).isFile()) throw new UnsafePath(file, 'is not a regular file');
    await h.truncate(0);
    await h.writeFile(data);
  } finally {
    await h.close();
  }
  return real;
}

/** A suite's file by its real path, only when that is inside root: a regular file, up to maxBytes. */
export async function readUnder(root: string, file: string, maxBytes: number): Promise<Buffer> {
  const [realRoot, real] = await Promise.all([realpath(root), realpath(file)]);
  if (!inside(realRoot, real)) throw new UnsafePath(file, `is really ${real}, outside ${realRoot}`);
  return readRegular(real, maxBytes);
}

/** Whether p is root or below it (both real, absolute paths). */
export const inside = (root: string, p: string): boolean => p === root || p.startsWith(root.endsWith('/') ? root : `${root}/`);
