// Cache integrity: each cached file's size, mtime and sha256, recorded when
// it is written (integrity.json beside it, atomically). Before a file is
// used, one stat says whether it may have changed; only then is it hashed
// again, so a warm run costs a few stats, and bytes written into the middle
// of a disk image are found before QEMU boots from it.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { lstat, readFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import { writeJsonAtomic } from './atomic.ts';

/** The sha256 of a regular file (callers lstat first: never a FIFO or a device). */
export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

const recordSchema = z.record(z.string(), z.object({ size: z.number(), mtimeMs: z.number(), sha256: z.string() }));
export type Recorded = z.infer<typeof recordSchema>;
export const INTEGRITY = 'integrity.json';

/** Records names (relative to dir) into dir/integrity.json. */
export async function recordIntegrity(dir: string, names: readonly string[]): Promise<Recorded> {
  const rec: Recorded = {};
  for (const n of names) {
    const st = await lstat(path.join(dir, n));
    rec[n] = { size: st.size, mtimeMs: Math.trunc(st.mtimeMs), sha256: await sha256File(path.join(dir, n)) };
  }
  await writeJsonAtomic(path.join(dir, INTEGRITY), rec, { mode: 0o600 });
  return rec;
}

export async function readIntegrity(dir: string): Promise<Recorded | undefined> {
  const r = recordSchema.safeParse(JSON.parse(await readFile(path.join(dir, INTEGRITY), 'utf8').catch(() => 'null')));
  return r.success ? r.data : undefined;
}

/**
 * What is wrong with the recorded files: missing, not a regular file, or a
 * sha256 that differs. A file whose size and mtime are as recorded is taken
 * as it is unless all is set (vm:image verify).
 */
export async function checkIntegrity(dir: string, rec: Recorded, o: { all?: boolean } = {}): Promise<string[]> {
  const bad: string[] = [];
  for (const [n, want] of Object.entries(rec)) {
    const st = await lstat(path.join(dir, n)).catch(() => undefined);
    if (!st) bad.push(`${n}: missing`);
    else if (!st.isFile()) bad.push(`${n}: not a regular file`);
    else if (o.all || st.size !== want.size || Math.trunc(st.mtimeMs) !== want.mtimeMs) {
      if (st.size !== want.size) bad.push(`${n}: ${st.size} bytes, ${want.size} when it was written`);
      else if ((await sha256File(path.join(dir, n))) !== want.sha256) bad.push(`${n}: its sha256 differs from when it was written`);
    }
  }
  return bad;
}
