// Where vm:test builds a suite on the host: one tree per suite (its root, or
// its --module-dir mounts), kbuild tree and compiler, kept in the cache
// across runs, as a kept instance keeps its own. A run whose sources did not
// change makes nothing (the tree's stamps say so); one whose .c/.h contents
// changed replays kbuild's recorded commands. kbuild writes absolute paths
// into its records, so the tree never moves. Two runs of one suite at once
// take turns: the tree is locked (proper-lockfile) from the build to the end
// of the run's uploads.
import { createHash } from 'node:crypto';
import { utimes } from 'node:fs/promises';
import path from 'node:path';
import { mkdirPrivate } from '../core/disk.ts';
import { acquire } from '../core/lock.ts';
import type { Suite } from './load.ts';

export const hostBuildsDir = (cacheDir: string): string => path.join(cacheDir, 'host-builds');

/** The suite's build tree: keyed by where its files are, the kbuild tree and the compiler. */
export function buildTreeFor(cacheDir: string, suite: Pick<Suite, 'root' | 'mounts'>, kdir: string, cc: string | undefined, variant = ''): string {
  const where = suite.mounts ? suite.mounts.map((m) => `${m.rel}=${m.abs}`).join('\0') : suite.root;
  const key = createHash('sha256')
    .update(`${where}\0${kdir}\0${cc ?? ''}${variant ? `\0${variant}` : ''}`)
    .digest('hex')
    .slice(0, 16);
  return path.join(hostBuildsDir(cacheDir), key, 'tree');
}

/** Takes the tree's lock, waiting for another run that holds it; returns the release. */
export async function lockTree(tree: string, log: (l: string) => void, waitS = 1800): Promise<() => Promise<void>> {
  await mkdirPrivate(path.dirname(tree));
  const release = await acquire(path.dirname(tree), {
    waitS,
    failure: 'setup',
    what: `the build tree ${tree}`,
    onWait: () => log(`build: another run is building this suite in ${tree}; waiting for it`),
  });
  // Its last use, for vm:image prune (loop/prune.ts), which removes build trees unused for a while.
  const now = new Date();
  await utimes(path.dirname(tree), now, now);
  return release;
}
