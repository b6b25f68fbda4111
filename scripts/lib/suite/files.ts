// The files of a suite root that travel: to the host build tree and to the
// guest. Left out: build products, what a .gitignore (the root's or a
// subdirectory's) ignores, the suite's own exclude patterns, .git,
// node_modules, the runs directory, and any ELF file (a binary in a source
// tree was built from it). Symlinked directories are not followed.
import { open, readFile, readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import ignore, { type Ignore } from 'ignore';

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

/** The suite's source files, relative to root, sorted. `skipDirs` are absolute directories left out (the runs directory). */
export async function suiteFiles(root: string, o: { exclude?: readonly string[]; skipDirs?: readonly string[] } = {}): Promise<string[]> {
  const out: string[] = [];
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
        if (ALWAYS.includes(e.name) || skip.has(path.join(root, r)) || ignored(r, true)) continue;
        await walk(r, here);
      } else if (e.isFile() || e.isSymbolicLink()) {
        if (isBuildProduct(r) || ignored(r, false)) continue;
        const st = await stat(path.join(root, r)).catch(() => undefined);
        if (!st?.isFile() || (await isElf(path.join(root, r)))) continue;
        out.push(r);
      }
    }
  };
  await walk('', o.exclude?.length ? [{ base: '', ig: ignore().add([...o.exclude]) }] : []);
  return out;
}
