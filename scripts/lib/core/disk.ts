import { existsSync } from 'node:fs';
import { chmod, lstat, mkdir, open, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** Bytes on disk under p (allocated blocks, so a sparse file counts what it uses), like du. */
export async function diskBytes(p: string): Promise<number> {
  const s = await lstat(p);
  if (!s.isDirectory()) return s.isFile() ? s.blocks * 512 : 0;
  let total = 0;
  for (const e of await readdir(p, { recursive: true, withFileTypes: true })) {
    const st = await lstat(path.join(e.parentPath, e.name));
    if (st.isFile()) total += st.blocks * 512;
  }
  return total;
}

/** Makes dir 0700 (and its missing parents with the usual mode: a root-made ~/.cache must not lock its user out). */
export async function mkdirPrivate(dir: string): Promise<void> {
  await mkdir(path.dirname(dir), { recursive: true });
  await mkdir(dir, { recursive: true, mode: 0o700 });
}

/** Makes dir 0700 when it is open to others (a cache made before kmodvm kept its directories private). */
export async function privateDir(dir: string): Promise<void> {
  const s = await stat(dir).catch(() => undefined);
  if (s && s.mode & 0o077) await chmod(dir, 0o700);
}

/** Bytes as whole MiB, for messages. */
export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** A file's size so far, 0 when it is not there yet (a serial log before QEMU writes it). */
export const fileSize = async (f: string): Promise<number> => (await stat(f).catch(() => undefined))?.size ?? 0;

/** The most readFrom() reads of what a log gained: a guest that floods its console is judged on the last 64 MiB. */
export const READ_FROM_MAX = 64 * 2 ** 20;

/** What a file holds from byte `at` on: what a log gained since fileSize() was read (its last READ_FROM_MAX bytes, with a note). */
export async function readFrom(f: string, at: number, max = READ_FROM_MAX): Promise<string> {
  const h = await open(f, 'r').catch(() => undefined);
  if (!h) return '';
  try {
    const size = (await h.stat()).size;
    if (size <= at) return '';
    const from = Math.max(at, size - max);
    const buf = Buffer.alloc(size - from);
    const { bytesRead } = await h.read(buf, 0, buf.length, from);
    const note = from > at ? `[kmodvm: ${from - at} bytes of ${f} left out; the last ${max} follow]\n` : '';
    return note + buf.subarray(0, bytesRead).toString('utf8');
  } finally {
    await h.close();
  }
}

/** The Cache Directory Tagging Specification's signature (bford.info/cachedir): tar --exclude-caches and backup tools honour it. */
export const CACHEDIR_SIGNATURE = 'Signature: 8a477f597d28d172789f06886806bc55';

/** Tags a directory of kmodvm's own output (the runs directory) so no later upload, backup or tar takes it; written once. */
export async function tagCacheDir(dir: string): Promise<void> {
  const tag = path.join(dir, 'CACHEDIR.TAG');
  if (existsSync(tag)) return;
  await writeFile(tag, `${CACHEDIR_SIGNATURE}\n# kmodvm's run directories: not sources. See https://bford.info/cachedir/\n`).catch(() => undefined);
}

/** Whether a directory carries that tag. */
export async function isTaggedCacheDir(dir: string): Promise<boolean> {
  const text = await readFile(path.join(dir, 'CACHEDIR.TAG'), 'utf8').catch(() => '');
  return text.startsWith(CACHEDIR_SIGNATURE);
}
