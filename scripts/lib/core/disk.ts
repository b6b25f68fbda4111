import { lstat, readdir } from 'node:fs/promises';
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
