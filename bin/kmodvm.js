#!/usr/bin/env node
// kmodvm COMMAND [options] (npx kmodvm, and npm run vm:*): runs the compiled
// CLI in dist/ (scripts/build-cli.mjs). When scripts/ is newer than the
// build (an edit in a checkout), it compiles again first, in about 0.1 s;
// when it cannot (no esbuild), it runs the TypeScript through tsx.
import { readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

function current() {
  try {
    const name = readFileSync(path.join(root, 'dist/current'), 'utf8').trim();
    const entry = path.join(root, 'dist', name, 'kmodvm.js');
    return { entry, mtimeMs: statSync(entry).mtimeMs };
  } catch {
    return undefined;
  }
}

let entry;
try {
  const { buildCli, newestSource } = await import('../scripts/build-cli.mjs');
  const built = current();
  entry = built && built.mtimeMs >= newestSource() ? built.entry : await buildCli({ quiet: true });
} catch {
  entry = undefined;
}
if (entry) await import(pathToFileURL(entry).href);
else {
  const { register } = await import('tsx/esm/api');
  register();
  await import(pathToFileURL(path.join(root, 'scripts/kmodvm.ts')).href);
}
