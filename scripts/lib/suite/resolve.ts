// Which suite a run takes, and which of its tests: --suite FILE; else
// --module-dir (with --app-dir, --transcript) as a one-test suite; else
// ./kmodvm.yaml in the current directory; else this checkout's own
// kmodvm.yaml (the netlink demo). Then --only and --shard, and each
// selected test's transcript parsed, so bad input fails before anything boots.
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { posixJoin } from '../core/end.ts';
import { KmodvmError } from '../core/errors.ts';
import { readUnder } from '../core/tree-fs.ts';
import { parseTranscript } from '../verdict/transcript.ts';
import { checkDevicesWithQemu } from '../vm/device-check.ts';
import { suiteFiles } from './files.ts';
import { checkGdbAsk } from './gdb-step.ts';
import { allDevices, loadSuite, type Suite, TRANSCRIPT_MAX } from './load.ts';
import { expandRuns, shuffleSeed } from './repeat.ts';
import { parseShard, selectTests } from './select.ts';
import type { SelectedTest } from './types.ts';

export interface ResolvedSuite {
  suite: Suite;
  selected: SelectedTest[];
  files: string[];
  /** The symlinks of the suite that do not travel, each "name -> target (why)". */
  linksLeftOut: string[];
  /** The ELF files left out (a binary in a source tree is built from it; include: brings one back). */
  elfLeftOut: string[];
  /** --shuffle's seed, when the runs are shuffled (suite/repeat.ts). */
  seed?: number;
}

/** The suite file a run without --suite takes. */
export function defaultSuiteFile(c: Pick<Config, 'root'>, cwd: string): string {
  const here = path.join(cwd, 'kmodvm.yaml');
  return existsSync(here) ? here : path.join(c.root, 'kmodvm.yaml');
}

/** The guest command line that runs the one program an app dir built (the legacy --app-dir test). */
export function runOnlyProgram(appRel: string): string {
  const dir = posixJoin([appRel]);
  return `cd ${dir} && for f in *; do if [ -f "$f" ] && [ -x "$f" ] && [ "$(head -c 4 "$f")" = "$(printf '\\177ELF')" ]; then exec "./$f"; fi; done; echo "kmodvm: no program was built in ${appRel}" >&2; exit 127`;
}

/**
 * --module-dir [--app-dir] [--transcript]: a one-test suite named default.
 * The two dirs may be anywhere; in the suite (and in the guest) they are
 * kernel-module/ and userapp/, whatever their host paths, so the guest's
 * recorded kbuilds (keyed by the guest path) serve every copy of a module.
 */
export function legacySuite(c: Pick<Config, 'moduleDir' | 'appDir' | 'transcript'>): Suite {
  const mod = path.resolve(c.moduleDir);
  const app = c.appDir ? path.resolve(c.appDir) : undefined;
  for (const [flag, d] of [
    ['--module-dir', mod],
    ['--app-dir', app],
  ] as const) {
    if (d && !existsSync(path.join(d, 'Makefile')) && !existsSync(path.join(d, 'Kbuild')))
      throw new KmodvmError('usage', `${flag} ${d}: no such directory with a Makefile`, { hint: 'pass the directory that holds the Makefile' });
  }
  return {
    file: '(--module-dir)',
    root: path.dirname(mod),
    modules: [{ dir: 'kernel-module', abs: mod, params: [] }],
    apps: app ? [{ dir: 'userapp', abs: app }] : [],
    tests: [
      {
        name: 'default',
        run: app ? runOnlyProgram('userapp') : 'true',
        exitCode: 0,
        transcript: c.transcript ? { rel: path.relative(process.cwd(), c.transcript), abs: path.resolve(c.transcript) } : undefined,
      },
    ],
    setup: [],
    load: 'per-test',
    kernelArgs: [],
    memcheck: false,
    dump: false,
    coverage: false,
    checks: {},
    exclude: [],
    include: [],
    devices: [],
    fixtures: [],
    mounts: [{ rel: 'kernel-module', abs: mod }, ...(app ? [{ rel: 'userapp', abs: app }] : [])],
  };
}

/** The files that travel, relative to the suite: the root's, or each mount's under its name (a mount is a root of its own). */
export async function filesOf(suite: Suite, skipDirs: string[], linksLeftOut: string[] = [], elfLeftOut: string[] = []): Promise<string[]> {
  if (!suite.mounts) return suiteFiles(suite.root, { exclude: suite.exclude, include: suite.include, skipDirs, linksLeftOut, elfLeftOut });
  const parts = await Promise.all(
    suite.mounts.map(async (m) => {
      const left: string[] = [];
      const elf: string[] = [];
      const files = (await suiteFiles(m.abs, { skipDirs, linksLeftOut: left, elfLeftOut: elf })).map((f) => `${m.rel}/${f}`);
      linksLeftOut.push(...left.map((l) => `${m.rel}/${l}`));
      elfLeftOut.push(...elf.map((l) => `${m.rel}/${l}`));
      return files;
    }),
  );
  return parts.flat();
}

export async function resolveSuite(
  c: Pick<Config, 'appDir' | 'cacheDir' | 'moduleDir' | 'only' | 'root' | 'runsDir' | 'shard' | 'suite' | 'transcript' | 'update'> &
    Partial<Pick<Config, 'repeat' | 'shuffle' | 'gdb' | 'gdbBatch' | 'gdbBeforeLoad'>>,
  cwd = process.cwd(),
): Promise<ResolvedSuite> {
  const suite = c.moduleDir ? legacySuite(c) : await loadSuite(c.suite || defaultSuiteFile(c, cwd), { update: c.update });
  const devices = allDevices(suite);
  const refused = devices.length ? await checkDevicesWithQemu(devices) : undefined;
  if (refused) throw refused;
  const tests = selectTests(suite.tests, { only: c.only, shard: c.shard ? parseShard(c.shard) : undefined });
  checkGdbAsk(c.gdb ?? '', c.gdbBatch ?? '', suite.tests, tests, Boolean(process.stdin.isTTY), {
    beforeLoad: c.gdbBeforeLoad,
    loadOnce: suite.load === 'once',
  });
  const selected: SelectedTest[] = [];
  for (const test of tests) {
    if (!test.transcript) {
      selected.push({ test });
      continue;
    }
    // Only a file inside the suite: a transcript linked to a host file would be printed in every diff.
    const root = suite.mounts ? path.dirname(test.transcript.abs) : suite.root;
    const text = await readUnder(root, test.transcript.abs, TRANSCRIPT_MAX).then(String, () => undefined);
    if (text === undefined && !c.update)
      throw new KmodvmError('usage', `cannot read the transcript ${test.transcript.abs} (test ${test.name})`, {
        hint: 'write it, or run with --update to write it from the run',
      });
    selected.push({ test, transcript: text === undefined ? undefined : parseTranscript(text, test.transcript.abs) });
  }
  const linksLeftOut: string[] = [];
  const elfLeftOut: string[] = [];
  const files = await filesOf(suite, [c.runsDir, c.cacheDir], linksLeftOut, elfLeftOut);
  const seed = shuffleSeed(c.shuffle ?? '');
  return { suite, selected: expandRuns(selected, { repeat: c.repeat ?? 1, seed }), files, linksLeftOut, elfLeftOut, seed };
}
