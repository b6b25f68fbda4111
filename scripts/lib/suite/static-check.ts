// The static checks (#27.3): what the 0-day robot reports anyway, before
// the module goes out. The suite's modules built again with W=1 and sparse
// (C=2 CHECK=sparse) in a fresh tree of their own, so every file is
// compiled and the run's own build stays cached; then checkpatch.pl
// --no-tree of the kernel source the debug kernel is built from, on the
// user's own .c and .h files. Everything runs in the build sandbox.
// Findings outside the user's files (a kernel header's W=1 warning) are
// not theirs and are left out. `static: warn` reports, `strict` fails with
// its own class (exit 16).
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ensureDebugKernel } from '../build/debug-kernel.ts';
import { runSandboxed } from '../build/sandbox.ts';
import { buildFindings, checkpatchFindings, type Finding, findingLine, findingsSummary } from '../build/static-findings.ts';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { tail } from '../core/proc.ts';
import { preflight } from '../host/preflight.ts';
import type { CheckResult } from '../verdict/model.ts';
import { hostBuildSuite } from './host-build.ts';
import type { Suite } from './load.ts';
import type { ResolvedSuite } from './resolve.ts';

export const STATIC_MAKE = ['W=1', 'C=2', 'CHECK=sparse'] as const;

export interface StaticInput {
  suite: Suite;
  files: readonly string[];
  kdir: string;
  /** checkpatch.pl in the debug kernel's source tree. */
  checkpatch: string;
  mode: 'warn' | 'strict';
  timeoutMs: number;
}

/** The user's own sources checkpatch reads: the suite's .c and .h files, not kbuild's generated .mod.c. */
export const checkpatchFiles = (files: readonly string[]): string[] => files.filter((f) => /\.[ch]$/.test(f) && !f.endsWith('.mod.c'));

/** checkpatch.pl of a debug kernel's tree, or a setup error that says where it looked. */
export function checkpatchIn(buildDir: string): string {
  const f = path.join(buildDir, 'scripts/checkpatch.pl');
  if (!existsSync(f))
    throw new KmodvmError('setup', `the static checks need checkpatch.pl, which is not in ${path.dirname(f)}`, {
      hint: `the debug kernel's tree is Debian's linux-source, whose scripts/ has it: remove ${path.dirname(buildDir)} and kmodvm builds it again on the next check`,
    });
  return f;
}

export async function staticCheck(i: StaticInput): Promise<CheckResult> {
  const t0 = Date.now();
  const tree = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-static-'));
  try {
    const hb = await hostBuildSuite({
      suite: { ...i.suite, apps: [] },
      files: i.files,
      tree,
      kdir: i.kdir,
      timeoutMs: i.timeoutMs,
      replay: false,
      extraMake: STATIC_MAKE,
    });
    if (!hb.ok) {
      const bad = hb.dirs.find((d) => !d.build.ok);
      return {
        name: 'static',
        ok: false,
        failure: 'build',
        durationMs: Date.now() - t0,
        message: `the modules do not build with ${STATIC_MAKE.join(' ')}`,
        evidence: bad?.build.evidence ?? tail(bad?.build.output ?? '', 20),
      };
    }
    const own = (f: Finding): boolean => f.file.startsWith(`${i.suite.root}/`);
    const built = hb.dirs.flatMap((d) => buildFindings(d.build.output)).filter(own);
    const files = checkpatchFiles(i.files);
    const cp = files.length
      ? await runSandboxed(
          'perl',
          [i.checkpatch, '--no-tree', '--terse', '--file', ...files],
          { writable: [tree], readable: [path.dirname(i.checkpatch)], cwd: tree },
          { timeoutMs: i.timeoutMs },
        )
      : undefined;
    if (cp && cp.exitCode !== 0 && !/total: \d+ errors/.test(cp.stdout))
      throw new KmodvmError('setup', `checkpatch.pl did not run (${cp.reason})`, {
        evidence: tail(`${cp.stdout}\n${cp.stderr}`, 15),
        hint: `run it yourself: perl ${i.checkpatch} --no-tree --file FILE`,
      });
    const patch = checkpatchFindings(cp?.stdout ?? '').map((f) => ({ ...f, file: path.join(i.suite.root, f.file) }));
    const all = [...built, ...patch];
    const ok = i.mode === 'warn' || all.length === 0;
    const evidence = all.length ? [...all.slice(0, 50).map(findingLine), ...(all.length > 50 ? [`… and ${all.length - 50} more`] : [])].join('\n') : undefined;
    return {
      name: 'static',
      ok,
      failure: ok ? undefined : 'static',
      durationMs: Date.now() - t0,
      message: `${findingsSummary(all)}${i.mode === 'warn' && all.length ? ' (static: warn reports them)' : ''}`,
      evidence: evidence && (ok ? evidence : `${evidence}\nnext: fix them, or set static: warn to report without failing`),
      annotations: all.map((f) => ({ file: f.file, line: f.line, col: f.col, message: `${f.tool} ${f.severity}: ${f.message}` })),
    };
  } finally {
    await rm(tree, { recursive: true, force: true });
  }
}

/**
 * The static checks of a run or of kmodvm check, started now: checkpatch
 * from the debug kernel's tree (built first when it is not cached, docs),
 * sparse installed when missing. A check that cannot run is a failed check
 * of its own class (setup), never a silent pass.
 */
export async function startStatic(
  c: Pick<Config, 'cacheDir' | 'debugKernel' | 'mirror' | 'root' | 'verbose' | 'timeouts'>,
  rs: Pick<ResolvedSuite, 'suite' | 'files'>,
  o: { kdir: string; mode: 'warn' | 'strict'; log: (l: string) => void },
): Promise<CheckResult> {
  try {
    await preflight(o.log, STATIC_TOOLS);
    const dk = await ensureDebugKernel({ ...c, debugKernel: c.debugKernel || DEFAULT_DEBUG_KERNEL }, o.log);
    return await staticCheck({
      suite: rs.suite,
      files: rs.files,
      kdir: o.kdir,
      checkpatch: checkpatchIn(dk.buildDir),
      mode: o.mode,
      timeoutMs: c.timeouts.build * 1000,
    });
  } catch (e) {
    // Started beside the boot, awaited later or never: it settles, whatever happens.
    if (!(e instanceof KmodvmError))
      return { name: 'static', ok: false, failure: 'internal', durationMs: 0, message: `the static checks failed: ${(e as Error).message}` };
    return {
      name: 'static',
      ok: false,
      failure: e.failure,
      durationMs: 0,
      message: e.message,
      evidence: [e.evidence, e.hint && `next: ${e.hint}`].filter(Boolean).join('\n') || undefined,
    };
  }
}

/** The debug kernel whose linux-source tree gives checkpatch.pl. */
const DEFAULT_DEBUG_KERNEL = 'debian-12-debug';
const STATIC_TOOLS = [
  { probe: 'sparse', pkg: 'sparse', why: "the static checks' semantic checker (C=2 CHECK=sparse)" },
  { probe: 'perl', pkg: 'perl', why: 'runs checkpatch.pl' },
];
