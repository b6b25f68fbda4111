import { lstat, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';

/** Bytes on disk under p (allocated blocks, so a sparse file counts what it uses), like du. */
export async function diskBytes(p: string): Promise<number> {
  const s = await lstat(p);
  if (!s.isDirectory()) return s.isFile() ? s.blocks * 512 : 0;
  let total = 0;
  for (const n of await readdir(p)) total += await diskBytes(path.join(p, n));
  return total;
}

/** Bytes as whole MiB, for messages. */
export const mib = (bytes: number): string => `${(bytes / 2 ** 20).toFixed(0)} MiB`;

/** A file's size so far, 0 when it is not there yet (a serial log before QEMU writes it). */
export const fileSize = async (f: string): Promise<number> => (await stat(f).catch(() => undefined))?.size ?? 0;

/** What a file holds from byte `at` on: what a log gained since fileSize() was read. */
export const readFrom = async (f: string, at: number): Promise<string> => (await readFile(f).catch(() => Buffer.alloc(0))).subarray(at).toString('utf8');
