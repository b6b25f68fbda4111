// Lab room: export a built image (image, kernel, initrds, keys, headers,
// manifest) to one archive, and import it on a machine with no mirror.
// An image holds code the host runs (the kbuild headers' scripts and
// Makefiles run in host builds, sandboxed or not), so an archive is trusted
// or refused, never half-checked:
// - export.json lists every regular file with its sha256, and every
//   symlink with its target (the headers have a few, all inside the tree);
//   its own sha256 is the archive's fingerprint, which export prints;
// - import takes an archive only with --trust FINGERPRINT, and refuses
//   before extracting a member that is not a file, a directory or a symlink,
//   or whose path is absolute or has `..`; after extracting, a file the
//   checksums do not cover, a checksum whose file is missing, a symlink not
//   listed or pointing out of the image, and any other kind of file.
// docs/image.md says what trusting an archive means.

import { createHash } from 'node:crypto';
import { lstat, mkdir, readdir, readFile, readlink, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { recordIntegrity, sha256File } from '../core/integrity.ts';
import { kmodvmCommand } from '../core/invoked.ts';

export { sha256File };

import { mkdirPrivate } from '../core/disk.ts';
import { run, tail } from '../core/proc.ts';
import { relativeCommonInclude } from './headers.ts';
import { findImage, imageFileNames, imagesDir, type Manifest } from './image.ts';
import { rekeySeat } from './rekey.ts';

export const EXPORT_FORMAT = 'kmodvm-image-export/2';

const exportSchema = z.object({
  format: z.literal(EXPORT_FORMAT),
  key: z.string().regex(/^[0-9a-f]{16}$/),
  manifest: z.looseObject({ kernelVersion: z.string() }),
  sha256: z.record(z.string(), z.string().regex(/^[0-9a-f]{64}$/)),
  links: z.record(z.string(), z.string()),
});
export type ExportManifest = Omit<z.infer<typeof exportSchema>, 'manifest'> & { manifest: Manifest };

/** An archive's fingerprint: the sha256 of its export.json, which covers every file and link; 32 hex digits. */
export const fingerprintOf = (exportJson: Buffer | string): string => createHash('sha256').update(exportJson).digest('hex').slice(0, 32);

/** Everything under dir, by kind, without following symlinks. */
export async function treeEntries(dir: string): Promise<{ files: string[]; links: Record<string, string>; dirs: string[]; other: string[] }> {
  const out = { files: [] as string[], links: {} as Record<string, string>, dirs: [] as string[], other: [] as string[] };
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const rel = path.relative(dir, path.join(e.parentPath, e.name));
    if (e.isFile()) out.files.push(rel);
    else if (e.isDirectory()) out.dirs.push(rel);
    else if (e.isSymbolicLink()) out.links[rel] = await readlink(path.join(dir, rel));
    else out.other.push(rel);
  }
  out.files.sort();
  return out;
}

/** Files whose checksum differs from the export manifest, or that are missing. Pure over the two maps. */
export function verifyChecksums(expected: Record<string, string>, actual: Record<string, string | undefined>): string[] {
  return Object.keys(expected)
    .sort()
    .filter((f) => actual[f] !== expected[f])
    .map((f) => (actual[f] === undefined ? `${f}: missing` : `${f}: checksum differs`));
}

/** Whether a symlink at rel with target stays inside the image directory. */
export const linkInside = (rel: string, target: string): boolean =>
  !path.isAbsolute(target) &&
  !path
    .normalize(path.join(path.dirname(rel), target))
    .split('/')
    .includes('..');

export async function exportImage(c: Pick<Config, 'cacheDir' | 'recipe' | 'root'>, file: string, log: (l: string) => void): Promise<string> {
  const img = await findImage(c);
  if (!img) throw new KmodvmError('image', 'no image is built for this recipe yet', { hint: `build it first: ${kmodvmCommand('image', 'build')}` });
  const tree = await treeEntries(img.dir);
  const files = tree.files.filter((f) => f !== 'export.json');
  if (tree.other.length)
    throw new KmodvmError('image', `the image ${img.dir} holds files that are neither regular files, directories nor symlinks`, {
      evidence: tree.other.join('\n'),
    });
  log(`export: checksumming ${files.length} files`);
  const sha256: Record<string, string> = {};
  for (const f of files) sha256[f] = await sha256File(path.join(img.dir, f));
  const em: ExportManifest = { format: EXPORT_FORMAT, key: img.key, manifest: img.manifest, sha256, links: tree.links };
  const text = `${JSON.stringify(em, null, 2)}\n`;
  await writeFile(path.join(img.dir, 'export.json'), text);
  log(`export: writing ${file}`);
  const r = await run('tar', ['--create', '--sparse', '--zstd', '--file', path.resolve(file), '--directory', imagesDir(c), img.key], {
    timeoutMs: 30 * 60_000,
  });
  if (r.exitCode !== 0) throw new KmodvmError('image', `tar failed (${r.reason})`, { evidence: tail(r.stderr, 10) });
  const fp = fingerprintOf(text);
  log(`export: done, ${((await stat(file)).size / 2 ** 20).toFixed(0)} MiB, fingerprint ${fp}`);
  log(`export: on each seat: ${kmodvmCommand('image', `import ${path.basename(file)} --trust ${fp}`)}`);
  return fp;
}

const refuse = (file: string, why: string, evidence?: string): KmodvmError =>
  new KmodvmError('image', `${file} is refused: ${why}`, {
    evidence,
    hint: `make the archive with ${kmodvmCommand('image', 'export FILE')} on the machine you trust, and copy it again`,
  });

/** Before anything is extracted: every member a file, a directory or a symlink, under one image directory, with no absolute path and no `..`. */
async function checkListing(file: string): Promise<{ key: string; names: string[]; links: Set<string> }> {
  const list = async (verbose: boolean) => {
    const r = await run('tar', ['--list', ...(verbose ? ['--verbose'] : []), '--zstd', '--file', path.resolve(file)], { timeoutMs: 10 * 60_000 });
    if (r.exitCode !== 0)
      throw new KmodvmError('image', `${file} is not a readable kmodvm image archive (${r.reason})`, {
        evidence: tail(r.stderr, 10),
        hint: 'copy the archive again; it may be truncated',
      });
    return r.stdout.split('\n').filter(Boolean);
  };
  const verbose = await list(true);
  const kinds = verbose.filter((l) => !/^[-dl]/.test(l));
  if (kinds.length)
    throw refuse(file, 'it holds members that are not files, directories or symlinks (hard links, devices, FIFOs)', kinds.slice(0, 10).join('\n'));
  const names = await list(false);
  const key = names[0]?.split('/')[0] ?? '';
  const bad = names.filter((n) => n.startsWith('/') || n.split('/').includes('..') || n.split('/')[0] !== key);
  if (!/^[0-9a-f]{16}$/.test(key) || bad.length) throw refuse(file, 'a member lies outside its one image directory', bad.slice(0, 10).join('\n'));
  const links = new Set(verbose.flatMap((l) => /^l\S+\s+\S+\s+\d+\s+\S+\s+\S+\s(.+?) -> /.exec(l)?.[1] ?? []));
  return { key, names, links };
}

/** Before the rest is extracted: every member is export.json, a directory, or a file or link export.json lists. */
function checkMembers(file: string, a: { key: string; names: readonly string[]; links: Set<string> }, em: z.infer<typeof exportSchema>): void {
  // A second export.json (or any member twice) would be written over the one whose fingerprint was checked.
  const seen = new Set<string>();
  const twice = a.names.filter((n) => seen.has(n) || !seen.add(n));
  if (twice.length) throw refuse(file, 'it holds a member twice', twice.slice(0, 10).join('\n'));
  const rel = (n: string): string => n.slice(a.key.length + 1);
  const extra = a.names.filter(
    (n) => !n.endsWith('/') && rel(n) && rel(n) !== 'export.json' && !Object.hasOwn(em.sha256, rel(n)) && !Object.hasOwn(em.links, rel(n)),
  );
  const links = extra.filter((n) => a.links.has(n));
  if (links.length) throw refuse(file, 'its symlinks are not the ones its export.json lists inside the image', links.slice(0, 10).join('\n'));
  if (extra.length) throw refuse(file, `${extra.length} file(s) are not covered by its checksums`, extra.map(rel).slice(0, 10).join('\n'));
}

/** Only `<key>/export.json`, out of the archive: the fingerprint is checked before anything else is written. */
async function extractManifest(file: string, key: string, tmp: string): Promise<{ fp: string; em: z.infer<typeof exportSchema> }> {
  const r = await run(
    'tar',
    [
      '--extract',
      '--zstd',
      '--file',
      path.resolve(file),
      '--directory',
      tmp,
      '--no-same-owner',
      '--no-same-permissions',
      '--occurrence=1',
      `${key}/export.json`,
    ],
    {
      timeoutMs: 10 * 60_000,
    },
  );
  const emFile = path.join(tmp, key, 'export.json');
  const st = await lstat(emFile).catch(() => undefined);
  if (r.exitCode !== 0 || !st?.isFile() || st.size > 64 * 2 ** 20) throw refuse(file, 'it has no export.json (an archive from kmodvm export has one)');
  const text = await readFile(emFile);
  const parsed = exportSchema.safeParse(JSON.parse(text.toString('utf8') || '{}'));
  if (!parsed.success || parsed.data.key !== key) throw refuse(file, `its export.json is not a kmodvm ${EXPORT_FORMAT} manifest for image ${key}`);
  return { fp: fingerprintOf(text), em: parsed.data };
}

/** After extracting: exactly the files the checksums cover, each matching, and only the listed symlinks, all pointing inside. */
async function checkTree(file: string, dir: string, em: z.infer<typeof exportSchema>, log: (l: string) => void): Promise<void> {
  const tree = await treeEntries(dir);
  const files = tree.files.filter((f) => f !== 'export.json');
  const uncovered = files.filter((f) => !Object.hasOwn(em.sha256, f));
  if (uncovered.length) throw refuse(file, `${uncovered.length} file(s) are not covered by its checksums`, uncovered.slice(0, 10).join('\n'));
  if (tree.other.length) throw refuse(file, 'it holds files that are neither regular files, directories nor symlinks', tree.other.slice(0, 10).join('\n'));
  const links = Object.entries(tree.links).filter(([l, target]) => em.links[l] !== target || !linkInside(l, target));
  const missingLinks = Object.keys(em.links).filter((l) => !Object.hasOwn(tree.links, l));
  if (links.length || missingLinks.length)
    throw refuse(
      file,
      'its symlinks are not the ones its export.json lists inside the image',
      [...links.map(([l, t]) => `${l} -> ${t}`), ...missingLinks].slice(0, 10).join('\n'),
    );
  log(`import: verifying ${Object.keys(em.sha256).length} checksums`);
  const actual: Record<string, string | undefined> = {};
  const present = new Set(files);
  for (const f of Object.keys(em.sha256)) actual[f] = present.has(f) ? await sha256File(path.join(dir, f)) : undefined;
  const bad = verifyChecksums(em.sha256, actual);
  if (bad.length)
    throw new KmodvmError('image', `${file} is damaged: ${bad.length} file(s) do not match the manifest`, {
      evidence: bad.slice(0, 10).join('\n'),
      hint: 'copy the archive again from the machine that exported it',
    });
}

export async function importImage(
  c: Pick<Config, 'cacheDir' | 'kernel' | 'recipe' | 'root'>,
  file: string,
  log: (l: string) => void,
  o: { trust?: string } = {},
): Promise<string> {
  if (!(await lstat(file).catch(() => undefined))?.isFile()) throw new KmodvmError('usage', `no such archive: ${file}`);
  const listing = await checkListing(file);
  const { key } = listing;
  await mkdirPrivate(imagesDir(c));
  const tmp = path.join(imagesDir(c), `.tmp-import-${process.pid}`);
  await rm(tmp, { recursive: true, force: true });
  await mkdir(tmp, { mode: 0o700 });
  try {
    const { fp, em } = await extractManifest(file, key, tmp).catch((e) =>
      e instanceof SyntaxError ? Promise.reject(refuse(file, 'its export.json is not JSON')) : Promise.reject(e),
    );
    if (o.trust !== fp) {
      throw new KmodvmError(
        'usage',
        `the archive's fingerprint is ${fp}${o.trust ? `, not the ${o.trust} you trust` : ''}: an image holds code this machine runs, so import takes it only when told to trust it`,
        {
          hint: `compare it with the one \`vm:image -- export\` printed on the machine you trust, then: ${kmodvmCommand('image', `import ${file} --trust ${fp}`)}`,
        },
      );
    }
    checkMembers(file, listing, em);
    const r = await run('tar', ['--extract', '--zstd', '--file', path.resolve(file), '--directory', tmp, '--no-same-owner', '--no-same-permissions'], {
      timeoutMs: 30 * 60_000,
    });
    if (r.exitCode !== 0)
      throw new KmodvmError('image', `${file} is not a readable kmodvm image archive (${r.reason})`, {
        evidence: tail(r.stderr, 10),
        hint: 'copy the archive again; it may be truncated',
      });
    const dir = path.join(tmp, key);
    await checkTree(file, dir, em, log);
    // Made this seat's before it becomes the cache's image: a refused rekey leaves no image behind.
    if (await relativeCommonInclude(dir)) log('import: the headers include their -common tree by a relative path now');
    await rekeySeat(dir, log);
    const final = path.join(imagesDir(c), key);
    await rm(final, { recursive: true, force: true });
    await rename(dir, final);
    await recordIntegrity(final, imageFileNames(final)); // tar kept the files' mtimes, not their inode times: recorded for this seat
    log(`import: image ${key} (kernel ${em.manifest.kernelVersion}), fingerprint ${fp}, is ready in ${final}`);
    const { imageKey } = await import('./image.ts');
    if (imageKey(c).key !== key)
      log(`import: note: this checkout's recipe for ${c.kernel} wants image ${imageKey(c).key}; check out the teacher's revision to use ${key}`);
    return key;
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}
