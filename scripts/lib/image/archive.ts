// Lab room: export a built image (image, kernel, initrds, keys, headers,
// manifest) to one archive, and import it on a machine with no mirror. The
// archive carries export.json: the image manifest plus a sha256 of every
// file; import verifies each before the image is renamed into the cache.
import { createHash } from 'node:crypto';
import { createReadStream, existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { findImage, imagesDir, type Manifest } from './image.ts';
import { run, tail } from '../core/proc.ts';

export interface ExportManifest {
  format: 'kmodvm-image-export/1';
  key: string;
  manifest: Manifest;
  sha256: Record<string, string>;
}

export function sha256File(file: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const h = createHash('sha256');
    createReadStream(file)
      .on('data', (d) => h.update(d))
      .on('error', reject)
      .on('end', () => resolve(h.digest('hex')));
  });
}

async function walk(dir: string, rel = ''): Promise<string[]> {
  const out: string[] = [];
  for (const n of (await readdir(path.join(dir, rel))).sort()) {
    const r = rel ? `${rel}/${n}` : n;
    const st = await stat(path.join(dir, r)).catch(() => undefined);
    if (st?.isDirectory()) out.push(...(await walk(dir, r)));
    else if (st?.isFile()) out.push(r);
  }
  return out;
}

/** Files whose checksum differs from the export manifest, or that are missing. Pure over the two maps. */
export function verifyChecksums(expected: Record<string, string>, actual: Record<string, string | undefined>): string[] {
  return Object.keys(expected)
    .sort()
    .filter((f) => actual[f] !== expected[f])
    .map((f) => (actual[f] === undefined ? `${f}: missing` : `${f}: checksum differs`));
}

export async function exportImage(c: Config, file: string, log: (l: string) => void): Promise<void> {
  const img = await findImage(c);
  if (!img) throw new KmodvmError('image', 'no image is built for this recipe yet', { hint: 'build it first: npm run vm:image -- build' });
  const files = (await walk(img.dir)).filter((f) => f !== 'export.json');
  log(`export: checksumming ${files.length} files`);
  const sha256: Record<string, string> = {};
  for (const f of files) sha256[f] = await sha256File(path.join(img.dir, f));
  const em: ExportManifest = { format: 'kmodvm-image-export/1', key: img.key, manifest: img.manifest, sha256 };
  await writeFile(path.join(img.dir, 'export.json'), JSON.stringify(em, null, 2) + '\n');
  log(`export: writing ${file}`);
  const r = await run('tar', ['--create', '--sparse', '--zstd', '--file', path.resolve(file), '--directory', imagesDir(c), img.key], {
    timeoutMs: 30 * 60_000,
  });
  if (r.exitCode !== 0) throw new KmodvmError('image', `tar failed (${r.reason})`, { evidence: tail(r.stderr, 10) });
  log(`export: done, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB; on each seat: npm run vm:image -- import ${path.basename(file)}`);
}

export async function importImage(c: Config, file: string, log: (l: string) => void): Promise<string> {
  if (!existsSync(file)) throw new KmodvmError('usage', `no such archive: ${file}`);
  await mkdir(imagesDir(c), { recursive: true });
  const tmp = path.join(imagesDir(c), `.tmp-import-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp);
  try {
    const r = await run('tar', ['--extract', '--zstd', '--file', path.resolve(file), '--directory', tmp, '--no-same-owner'], { timeoutMs: 30 * 60_000 });
    if (r.exitCode !== 0)
      throw new KmodvmError('image', `${file} is not a readable kmodvm image archive (${r.reason})`, {
        evidence: tail(r.stderr, 10),
        hint: 'copy the archive again; it may be truncated',
      });
    const [key, ...more] = await readdir(tmp);
    if (!key || more.length || !/^[0-9a-f]{16}$/.test(key)) throw new KmodvmError('image', `${file} does not hold exactly one image directory`);
    const dir = path.join(tmp, key);
    const em = JSON.parse(await readFile(path.join(dir, 'export.json'), 'utf8').catch(() => '{}')) as Partial<ExportManifest>;
    if (em.format !== 'kmodvm-image-export/1' || em.key !== key || !em.sha256)
      throw new KmodvmError('image', `${file} has no valid export.json`, { hint: 'make the archive with npm run vm:image -- export FILE' });
    log(`import: verifying ${Object.keys(em.sha256).length} checksums`);
    const actual: Record<string, string | undefined> = {};
    for (const f of Object.keys(em.sha256)) actual[f] = existsSync(path.join(dir, f)) ? await sha256File(path.join(dir, f)) : undefined;
    const bad = verifyChecksums(em.sha256, actual);
    if (bad.length)
      throw new KmodvmError('image', `${file} is damaged: ${bad.length} file(s) do not match the manifest`, {
        evidence: bad.slice(0, 10).join('\n'),
        hint: 'copy the archive again from the machine that exported it',
      });
    const final = path.join(imagesDir(c), key);
    await rm(final, { recursive: true, force: true });
    await rename(dir, final);
    log(`import: image ${key} (kernel ${em.manifest?.kernelVersion}) is ready in ${final}`);
    const { imageKey } = await import('./image.ts');
    if (imageKey(c).key !== key)
      log(`import: note: this checkout's recipe for ${c.kernel} wants image ${imageKey(c).key}; check out the teacher's revision to use ${key}`);
    return key;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
