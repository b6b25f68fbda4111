// A failing run's reproducer (issue 26.4): repro.json says what ran (kmodvm's
// version, the suite file and its hash, the kernel, the image key, the tests
// that failed, the flags that change a run), and reproduce.sh reruns exactly
// that with `kmodvm test --repro RUNDIR`, from this machine's run directories
// or from one downloaded from CI. The rerun says when what it has here (the
// image, the suite file, kmodvm) is not what failed.
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { z } from 'zod';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import type { RunReport } from '../verdict/model.ts';

export const reproSchema = z.object({
  kmodvm: z.string(),
  /** The suite file, relative to its repository's root, else to where kmodvm ran ('' for a --module-dir run). */
  suite: z.string(),
  /** Where it was, for the message when it is not found here (never opened). */
  suiteAbs: z.string(),
  suiteSha256: z.string(),
  kernel: z.string(),
  imageKey: z.string().optional(),
  failure: z.string().optional(),
  /** The tests to run again: the failed ones, or every selected one when the run failed before its tests. */
  tests: z.array(z.string()),
  shard: z.string(),
  memcheck: z.boolean(),
  failNth: z.number().int().nonnegative(),
  repeat: z.number().int().positive(),
  sameGuest: z.boolean(),
  untilFail: z.boolean(),
  seed: z.number().int().nonnegative().optional(),
  profile: z.string(),
  /** --dump: the rerun leaves a dump too (absent in a repro.json of before it). */
  dump: z.boolean().optional(),
  /** --coverage: the rerun measures coverage too. */
  coverage: z.boolean().optional(),
});
export type Repro = z.infer<typeof reproSchema>;

export const kmodvmVersion = (root: string): string => {
  try {
    return String(JSON.parse(readFileSync(path.join(root, 'package.json'), 'utf8')).version);
  } catch {
    return 'unknown';
  }
};

/** What a suite's path is kept relative to: its repository's root (the nearest directory up with .git), else where kmodvm ran. CI runs kmodvm from elsewhere (the action's own checkout), and a rerun starts at the repository's root. */
export function reproBase(suite: string, cwd: string): string {
  for (let d = path.dirname(suite); ; d = path.dirname(d)) {
    if (existsSync(path.join(d, '.git'))) return d;
    if (path.dirname(d) === d) return cwd;
  }
}

const sha256Of = (file: string): string => (existsSync(file) ? createHash('sha256').update(readFileSync(file)).digest('hex') : '');

/** What a failed run needs to run again. */
export function reproOf(
  c: Pick<Config, 'root' | 'kernel' | 'memcheck' | 'failNth' | 'repeat' | 'sameGuest' | 'untilFail' | 'profile' | 'only' | 'shard' | 'dump' | 'coverage'>,
  r: RunReport,
  cwd: string,
): Repro {
  const failed = [...new Set((r.tests ?? []).filter((t) => !t.ok).map((t) => t.base ?? t.name))];
  const file = r.suite && path.isAbsolute(r.suite) ? r.suite : '';
  return {
    kmodvm: kmodvmVersion(c.root),
    suite: file ? path.relative(reproBase(file, cwd), file) || path.basename(file) : '',
    suiteAbs: file,
    suiteSha256: file ? sha256Of(file) : '',
    kernel: c.kernel,
    imageKey: r.imageKey,
    failure: r.failure,
    // Failed before its tests (a build, a boot): the same selection again.
    tests: failed.length ? failed : [...c.only],
    shard: failed.length ? '' : c.shard,
    memcheck: c.memcheck,
    failNth: c.failNth,
    repeat: c.repeat,
    sameGuest: c.sameGuest,
    untilFail: c.untilFail,
    seed: r.seed,
    profile: c.profile,
    dump: c.dump,
    coverage: c.coverage,
  };
}

/** The script beside repro.json: run from the repository the run was made in. */
export function reproduceScript(x: Repro): string {
  return [
    '#!/bin/sh',
    `# kmodvm: run again what failed here (${x.tests.join(', ') || 'the tests'}${x.failure ? `: ${x.failure}` : ''}), as it ran:`,
    `# kmodvm ${x.kmodvm}, kernel ${x.kernel}, image ${x.imageKey ?? '?'}, suite ${x.suite || '(--module-dir)'}.`,
    '# Run it from the directory kmodvm ran in (the repository); it says when the image or the suite here differ.',
    '# KMODVM=path/to/kmodvm picks the tool; extra arguments go to kmodvm test.',
    'set -eu',
    'run_dir=$(cd "$(dirname "$0")" && pwd)',
    // biome-ignore lint/suspicious/noTemplateCurlyInString: a shell line, not a template
    'exec ${KMODVM:-npx kmodvm} test --repro "$run_dir" "$@"',
    '',
  ].join('\n');
}

/** repro.json and reproduce.sh in the run directory of a failed run. */
export async function writeRepro(runDir: string, x: Repro): Promise<void> {
  await writeFile(path.join(runDir, 'repro.json'), `${JSON.stringify(x, null, 2)}\n`);
  const sh = path.join(runDir, 'reproduce.sh');
  await writeFile(sh, reproduceScript(x));
  await chmod(sh, 0o755);
}

/** A run directory's repro.json; anything else is bad input (exit 2). */
export async function readRepro(dir: string): Promise<Repro> {
  const file = path.join(dir, 'repro.json');
  const hint = 'pass the run directory of a failed run (it holds repro.json and reproduce.sh; a run that passed has none)';
  const text = await readFile(file, 'utf8').catch(() => {
    throw new KmodvmError('usage', `--repro ${dir}: no repro.json there, so it is not a failed run's directory`, { hint });
  });
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new KmodvmError('usage', `--repro ${file}: not JSON (${(e as Error).message})`, { hint });
  }
  const r = reproSchema.safeParse(raw);
  if (!r.success) {
    const i = r.error.issues[0];
    throw new KmodvmError('usage', `--repro ${file}: field \`${i.path.join('.')}\` ${i.message}`, { hint });
  }
  return r.data;
}

/** The Config fields a rerun takes from the failed run; the suite is looked for from where the user is. */
export function reproConfig(x: Repro, dir: string, cwd: string): Partial<Config> {
  if (!x.suite) throw new KmodvmError('usage', `--repro ${dir}: that run had no suite file (--module-dir)`, { hint: 'run it again with its own flags' });
  // Only under the current directory: a run directory comes from elsewhere (CI), and no path it names is followed.
  const suite = path.resolve(cwd, x.suite);
  if (path.isAbsolute(x.suite) || x.suite.split(/[\\/]/).includes('..') || !existsSync(suite))
    throw new KmodvmError('usage', `--repro ${dir}: the run's suite ${x.suite} is not here (${suite})`, {
      hint: `run it from the repository's root (the suite was ${x.suiteAbs || x.suite} where it ran), at the commit that was tested`,
    });
  const shuffle = x.seed === undefined ? {} : { shuffle: String(x.seed) };
  return {
    suite,
    only: x.tests,
    shard: x.shard,
    kernel: x.kernel,
    memcheck: x.memcheck,
    failNth: x.failNth,
    repeat: x.repeat,
    sameGuest: x.sameGuest,
    untilFail: x.untilFail,
    profile: x.profile as Config['profile'],
    dump: x.dump ?? false,
    coverage: x.coverage ?? false,
    ...shuffle,
  };
}

/** What differs here from the run that failed: the lines a rerun prints before and after. */
export function reproDrift(x: Repro, here: { kmodvm: string; suiteSha256: string; imageKey?: string }): string[] {
  const out: string[] = [];
  if (x.kmodvm !== here.kmodvm) out.push(`kmodvm here is ${here.kmodvm}; the run that failed had ${x.kmodvm}`);
  if (x.suiteSha256 && x.suiteSha256 !== here.suiteSha256) out.push(`the suite file ${x.suite} has changed since the run that failed`);
  if (here.imageKey && x.imageKey && x.imageKey !== here.imageKey)
    out.push(`the image here (${here.imageKey}) is not the one that failed (${x.imageKey}): its packages differ, so the failure may not come back`);
  return out;
}

export { sha256Of };
