// Coverage on the host (#27.1), with Debian's tools in the build sandbox:
// lcov's geninfo runs gcov over a test's .gcda files (the guest's, so not
// trusted) beside the build's .gcno files, lcov adds the tests up, genhtml
// draws the HTML report and gcovr writes Cobertura XML for CI. Each reads the
// build tree and writes only the run's coverage directory.
import { mkdir, readdir, readFile, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import type { Requirement } from '../host/preflight.ts';
import { runSandboxed } from './sandbox.ts';

export const COVERAGE_TOOLS: readonly Requirement[] = [
  { probe: 'lcov', pkg: 'lcov', why: "--coverage: reads gcov's counts into lcov tracefiles, and draws the HTML report (genhtml)" },
  { probe: 'gcovr', pkg: 'gcovr', why: '--coverage: writes the Cobertura XML report CI reads' },
];

const TIMEOUT_MS = 120_000;
/** lcov 1.16 counts branches only when asked. */
const BRANCHES = ['--rc', 'lcov_branch_coverage=1'];

export interface ToolDirs {
  /** The build tree (its .gcno files and sources), read-only. */
  tree: string;
  /** The kernel tree kbuild ran in: the objects name its headers relative to it. Read-only. */
  kdir?: string;
  /** The run's coverage directory, the one writable dir. */
  out: string;
}

async function tool(cmd: string, args: readonly string[], d: ToolDirs, cwd = d.out): Promise<string> {
  const r = await runSandboxed(cmd, args, { writable: [d.out], readable: [d.tree, ...(d.kdir ? [d.kdir] : [])], cwd }, { timeoutMs: TIMEOUT_MS });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${r.reason}: ${`${r.stderr}\n${r.stdout}`.trim().split('\n').slice(-3).join(' | ')}`);
  return r.stdout;
}

/** One test's tracefile from the .gcda and .gcno files under sample (a mirror of the tree). */
export async function capture(sample: string, info: string, gcov: string, d: ToolDirs): Promise<string> {
  await tool('lcov', ['--quiet', '--capture', '--directory', sample, '--gcov-tool', gcov, ...BRANCHES, '--output-file', info], d);
  return readFile(info, 'utf8');
}

/** The tests' tracefiles added up. */
export async function addUp(infos: readonly string[], out: string, d: ToolDirs): Promise<string> {
  await tool('lcov', ['--quiet', ...infos.flatMap((i) => ['--add-tracefile', i]), ...BRANCHES, '--output-file', out], d);
  return readFile(out, 'utf8');
}

/** genhtml's report of a tracefile whose paths are the tree's (relative: it runs in the tree). */
export async function html(info: string, outDir: string, d: ToolDirs): Promise<void> {
  await tool('genhtml', ['--quiet', '--branch-coverage', '--legend', '--title', 'kmodvm coverage', '--output-directory', outDir, info], d, d.tree);
}

/** Cobertura XML of the samples' .gcda files, the tree's own sources only, paths relative to it. */
export async function cobertura(samples: readonly string[], xml: string, gcov: string, d: ToolDirs): Promise<void> {
  const root = d.tree.replace(/\/$/, '');
  // gcovr must open every file an object names, the kernel's headers too, relative to where kbuild ran; and gcov
  // writes its .gcov files where it runs. So it runs in a writable dir whose entries link to the kernel tree's.
  const objdir = d.kdir ? ['--object-directory', await kernelLinks(d.kdir, path.join(path.dirname(xml), '.gcov-cwd'))] : [];
  await tool('gcovr', ['--root', root, '--filter', `${root}/`, ...objdir, '--gcov-executable', gcov, '--xml-pretty', '--output', xml, ...samples], d, root);
  if (objdir.length) await rm(objdir[1], { recursive: true, force: true });
}

/** A dir whose entries are links to the kernel tree's top-level entries: kbuild's relative paths resolve in it, and it is writable. */
async function kernelLinks(kdir: string, dir: string): Promise<string> {
  await rm(dir, { recursive: true, force: true });
  await mkdir(dir, { recursive: true });
  for (const e of await readdir(kdir)) await symlink(path.join(kdir, e), path.join(dir, e));
  return dir;
}
