// The files of a suite root that travel: to the host build tree and to the
// guest. Left out: build products, what a .gitignore (the root's or a
// subdirectory's) ignores, the suite's own exclude patterns, .git,
// node_modules, the runs directory, and any ELF file (a binary in a source
// tree was built from it); the suite's include patterns bring ELF files and
// build products back (a prebuilt .ko, a firmware blob), and the ELF files
// left out are named, for the upload step's line. Symlinked directories are not followed, and a
// symlinked file travels only when its real path is inside the root: a
// `notes.txt -> ~/.ssh/id_ed25519` or `cfg -> .git/config` would otherwise
// copy a host secret into the guest and into every report.
import { open, readdir, readFile, readlink, realpath, stat } from 'node:fs/promises';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';
import { isTaggedCacheDir } from '../core/disk.ts';
import { inside } from '../core/tree-fs.ts';

/** kbuild's and the toolchain's products, by name. */
export const isBuildProduct = (rel: string): boolean =>
  /(^|\/)(\.[^/]*\.cmd|[^/]*\.(o|ko|mod|mod\.c|a|d)|modules\.order|Module\.symvers|\.tmp_versions|\.kmodvm-[^/]*|[^/]*\.kmodvm-built)$/.test(rel);

const ALWAYS = ['.git', 'node_modules'];

async function isElf(file: string): Promise<boolean> {
  const fh = await open(file, 'r').catch(() => undefined);
  if (!fh) return false;
  try {
    const b = Buffer.alloc(4);
    const { bytesRead } = await fh.read(b, 0, 4, 0);
    return bytesRead === 4 && b.equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
  } finally {
    await fh.close();
  }
}

/** Where a link in the suite points, relative to the root, or why it does not travel. */
async function linkTarget(file: string, realRoot: string, st: Awaited<ReturnType<typeof stat>> | undefined): Promise<string | { why: string }> {
  const real = await realpath(file).catch(() => undefined);
  if (!real || !st) return { why: 'its target is missing' };
  if (!inside(realRoot, real)) return { why: 'it points outside the suite' };
  if (st.isDirectory()) return { why: 'a directory: links to directories are not followed' };
  return path.relative(realRoot, real);
}

/**
 * The suite's source files, relative to root, sorted. `skipDirs` are
 * absolute directories left out (the runs directory). `linksLeftOut`
 * collects the symlinks left out, each as "name -> target (why)".
 */
export async function suiteFiles(
  root: string,
  o: { exclude?: readonly string[]; include?: readonly string[]; skipDirs?: readonly string[]; linksLeftOut?: string[]; elfLeftOut?: string[] } = {},
): Promise<string[]> {
  const out: string[] = [];
  const wanted = o.include?.length ? ignore().add([...o.include]) : undefined;
  const included = (r: string): boolean => Boolean(wanted?.ignores(r));
  const links: { r: string; target: string }[] = [];
  const realRoot = await realpath(root);
  const leaveOut = async (r: string, why: string): Promise<void> => {
    o.linksLeftOut?.push(`${r} -> ${await readlink(path.join(root, r)).catch(() => '?')} (${why})`);
  };
  const skip = new Set((o.skipDirs ?? []).map((d) => path.resolve(d)));
  const walk = async (rel: string, rules: { base: string; ig: Ignore }[]): Promise<void> => {
    const dir = path.join(root, rel);
    const gi = await readFile(path.join(dir, '.gitignore'), 'utf8').catch(() => undefined);
    const here = gi === undefined ? rules : [...rules, { base: rel, ig: ignore().add(gi) }];
    const ignored = (r: string, isDir: boolean): boolean =>
      here.some(({ base, ig }) => {
        const sub = base ? path.relative(base, r) : r;
        return !sub.startsWith('..') && ig.ignores(isDir ? `${sub}/` : sub);
      });
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => (a.name < b.name ? -1 : 1));
    for (const e of entries) {
      const r = rel ? `${rel}/${e.name}` : e.name;
      if (e.isDirectory()) {
        // kmodvm's own runs directories (any run's, tagged CACHEDIR.TAG), not only this run's.
        if (ALWAYS.includes(e.name) || skip.has(path.join(root, r)) || ignored(r, true) || (await isTaggedCacheDir(path.join(root, r)))) continue;
        await walk(r, here);
      } else if (e.isFile() || e.isSymbolicLink()) {
        if ((isBuildProduct(r) && !included(r)) || ignored(r, false)) continue;
        const st = await stat(path.join(root, r)).catch(() => undefined);
        if (e.isSymbolicLink()) {
          const l = await linkTarget(path.join(root, r), realRoot, st);
          if (typeof l === 'string') links.push({ r, target: l });
          else await leaveOut(r, l.why);
          continue;
        }
        if (!st?.isFile()) continue;
        if (!included(r) && (await isElf(path.join(root, r)))) {
          o.elfLeftOut?.push(r);
          continue;
        }
        out.push(r);
      }
    }
  };
  await walk('', o.exclude?.length ? [{ base: '', ig: ignore().add([...o.exclude]) }] : []);
  // A link travels when what it points at travels itself: not `cfg -> .git/config`, nor a link to an ignored file.
  const travels = new Set(out);
  for (const l of links) {
    if (travels.has(l.target)) out.push(l.r);
    else await leaveOut(l.r, `it points at ${l.target}, which does not travel`);
  }
  return out.sort();
}
