// What the guest's coverage step printed (suite/checks/coverage.ts): for
// each .gcda file the kernel keeps under /sys/kernel/debug/gcov for the
// build tree, a line "== PATH" and a line of its bytes in base64. The guest
// ran the code under test, so nothing here is trusted: a path must be a
// plain .gcda below the tree, and the files and their sizes are capped.

export interface GcdaFile {
  /** Relative to the build tree. */
  rel: string;
  data: Buffer;
}

const MAX_FILES = 2000;
const MAX_BYTES = 64 * 2 ** 20;

/** The .gcda files under tree in the step's output, and what was refused. */
export function parseGcdaDump(stdout: string, tree: string): { files: GcdaFile[]; refused: string[] } {
  const root = `${tree.replace(/\/$/, '')}/`;
  const files: GcdaFile[] = [];
  const refused: string[] = [];
  let total = 0;
  const lines = stdout.split('\n');
  for (let k = 0; k < lines.length; k++) {
    if (!lines[k].startsWith('== ')) continue;
    const p = lines[k].slice(3);
    const body = lines[k + 1] ?? '';
    k++;
    const rel = p.startsWith(root) ? p.slice(root.length) : '';
    const bad = !rel || !rel.endsWith('.gcda') || rel.split('/').some((s) => s === '..' || s === '.' || s === '') || !/^[A-Za-z0-9+/=]*$/.test(body);
    if (bad || files.length >= MAX_FILES || total + body.length > MAX_BYTES) {
      refused.push(p.slice(0, 200));
      continue;
    }
    total += body.length;
    files.push({ rel, data: Buffer.from(body, 'base64') });
  }
  return { files, refused };
}
