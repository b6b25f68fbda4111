// What an upload sends: host directories staged as one tar stream whose
// members carry their full guest path, so the guest unpacks it with one
// program at / (no sh, no mkdir: each program start is ~40 ms under TCG).
import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, readFile, realpath, rm, stat, symlink } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { inside } from '../core/tree-fs.ts';

/** One host directory to upload, into <remote base>/<sub>. */
export interface UploadPart {
  localDir: string;
  sub: string;
  skip?: (rel: string) => boolean;
  /** The files to send, relative to localDir; without it the directory is walked. */
  files?: readonly string[];
}

/** The guest's side of every upload: unpack stdin at /, files owned by the guest user. */
export const UNTAR = ['tar', '-x', '--no-same-owner', '-f', '-', '-C', '/'];

/** tar's output as it is written, and its end (rejected when tar failed on the host). */
export interface TarStream {
  stream: NodeJS.ReadableStream;
  done: Promise<void>;
}

export interface Staged {
  /** The files, relative to the remote base, sorted per part. */
  files: string[];
  /** sha256 of each file's contents. */
  hashes: Map<string, string>;
  /** Files named but not sent: not a regular file whose real path is inside its part's directory. */
  leftOut: string[];
  /** A tar stream of some of the files, each named by its full guest path less the leading /. */
  tar(files: readonly string[], timeoutMs: number): Promise<TarStream>;
  cleanup(): Promise<void>;
}

/** tar -c of the staged paths, streamed (a suite's 120 MB file once failed the upload at execa's buffer limit). */
async function tarStream(stage: string, remoteBase: string, paths: readonly string[], timeoutMs: number): Promise<TarStream> {
  const { execa } = await import('execa'); // loaded on the first upload, not at start
  const p = execa('tar', ['-c', '-h', '-f', '-', '--format=gnu', `--transform=s,^_[0-9]*/,${remoteBase.slice(1)}/,`, '--null', '-T', '-'], {
    input: paths.map((f) => `${f}\0`).join(''),
    buffer: { stdout: false, stderr: true },
    timeout: timeoutMs,
    reject: false,
    cwd: stage,
  });
  const done = p.then((r) => {
    if (r.exitCode !== 0)
      throw new Error(`upload: tar on the host failed (${r.timedOut ? `timed out after ${timeoutMs} ms` : `exit ${r.exitCode}`}): ${String(r.stderr).trim()}`);
  });
  done.catch(() => undefined); // awaited by the caller; not an unhandled rejection meanwhile
  // Held in a stream of our own from the first byte (execa's own drops what nobody reads before the channel opens); back-pressure holds tar.
  const out = new PassThrough();
  p.stdout.pipe(out);
  return { stream: out, done };
}

/**
 * tar -h follows links: each file must really be a regular file inside its
 * part's directory (a host build's tree is written by the build, which may
 * have left a link to a host file where a source was). Drops the others
 * from staged, and returns them.
 */
async function dropUnsafe(stage: string, staged: Map<string, string>, from: Map<string, string>): Promise<string[]> {
  const leftOut: string[] = [];
  const realDirs = new Map<string, string>();
  for (const d of new Set(from.values())) realDirs.set(d, await realpath(d));
  for (const [f, at] of [...staged]) {
    const real = await realpath(path.join(stage, at)).catch(() => undefined);
    if (!real || !inside(realDirs.get(from.get(f)!)!, real) || !(await stat(real)).isFile()) {
      staged.delete(f);
      leftOut.push(f);
    }
  }
  return leftOut;
}

/**
 * Lists the regular files of the parts (recursively, minus skip()) under a
 * staging directory of symlinks, one per part, which tar -h follows.
 * remoteBase must be a plain absolute path, sub a relative path of plain
 * names or '.'. A file named by two parts is sent from the later one.
 */
export async function stageTrees(remoteBase: string, parts: readonly UploadPart[]): Promise<Staged> {
  if (!/^(\/[\w.-]+)+$/.test(remoteBase) || remoteBase.split('/').includes('..')) throw new Error(`upload: "${remoteBase}" is not a plain absolute guest path`);
  for (const p of parts)
    if (p.sub !== '.' && (!/^[\w.-]+(\/[\w.-]+)*$/.test(p.sub) || p.sub.split('/').some((x) => x === '..' || x === '.')))
      throw new Error(`upload: "${p.sub}" is not a plain directory name (nor a relative path of them)`);
  const stage = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-upload-'));
  const cleanup = (): Promise<void> => rm(stage, { recursive: true, force: true });
  try {
    // Each file's path in the guest (relative to remoteBase) → its path in the stage.
    const staged = new Map<string, string>();
    // Each file's part's directory (a later part wins).
    const from = new Map<string, string>();
    for (const [k, p] of parts.entries()) {
      // Each part has its own stage root _K (two parts may share a sub: a module dir "." and the suite root);
      // tar's --transform takes _K/ off, so _K/<sub>/<file> lands at <remoteBase>/<sub>/<file>.
      const link = p.sub === '.' ? `_${k}` : `_${k}/${p.sub}`;
      const add = (r: string): void => {
        const f = p.sub === '.' ? r : `${p.sub}/${r}`;
        staged.delete(f);
        staged.set(f, `${link}/${r}`);
        from.set(f, p.localDir);
      };
      await mkdir(path.dirname(path.join(stage, link)), { recursive: true });
      await symlink(path.resolve(p.localDir), path.join(stage, link));
      const walk = async (rel: string): Promise<void> => {
        for (const n of (await readdir(path.join(p.localDir, rel))).sort()) {
          const r = rel ? `${rel}/${n}` : n;
          if (p.skip?.(r)) continue;
          const st = await stat(path.join(p.localDir, r));
          if (st.isDirectory()) await walk(r);
          else if (st.isFile()) add(r);
        }
      };
      if (p.files) p.files.filter((f) => !p.skip?.(f)).forEach(add);
      else await walk('');
    }
    const inStage = (f: string): string => staged.get(f)!;
    const leftOut = await dropUnsafe(stage, staged, from);
    const files = [...staged.keys()];
    const hashes = new Map<string, string>();
    for (const f of files)
      hashes.set(
        f,
        createHash('sha256')
          .update(await readFile(path.join(stage, inStage(f))))
          .digest('hex'),
      );
    const tar = (some: readonly string[], timeoutMs: number): Promise<TarStream> => tarStream(stage, remoteBase, some.map(inStage), timeoutMs);
    return { files, hashes, leftOut, tar, cleanup };
  } catch (e) {
    await cleanup();
    throw e;
  }
}
