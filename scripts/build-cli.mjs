// Compiles the CLI once (npm's prepare, or bin/kmodvm.js when scripts/ is
// newer): esbuild bundles scripts/kmodvm.ts, one chunk per command, the npm
// packages left as imports. Each build goes to its own directory and
// dist/current names it (written atomically), so a process that starts
// during a build runs the previous one whole.
import { mkdirSync, readdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

/** Newest mtime of a TypeScript source under scripts/. */
export function newestSource() {
  let newest = 0;
  for (const e of readdirSync(path.join(root, 'scripts'), { recursive: true, withFileTypes: true })) {
    if (e.isFile() && e.name.endsWith('.ts')) newest = Math.max(newest, statSync(path.join(e.parentPath, e.name)).mtimeMs);
  }
  return newest;
}

export async function buildCli(o = {}) {
  const { build } = await import('esbuild');
  const dist = path.join(root, 'dist');
  mkdirSync(dist, { recursive: true });
  const name = `build-${Date.now()}-${process.pid}`;
  await build({
    entryPoints: [path.join(root, 'scripts/kmodvm.ts')],
    bundle: true,
    splitting: true,
    format: 'esm',
    platform: 'node',
    target: 'node20',
    packages: 'external',
    outdir: path.join(dist, name),
    logLevel: o.quiet ? 'silent' : 'warning',
  });
  const tmp = path.join(dist, `.current.${process.pid}`);
  writeFileSync(tmp, `${name}\n`);
  renameSync(tmp, path.join(dist, 'current'));
  // Builds older than a minute are no one's any more.
  for (const d of readdirSync(dist)) {
    if (d.startsWith('build-') && d !== name && Date.now() - statSync(path.join(dist, d)).mtimeMs > 60_000) rmSync(path.join(dist, d), { recursive: true, force: true });
  }
  return path.join(dist, name, 'kmodvm.js');
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await buildCli();
