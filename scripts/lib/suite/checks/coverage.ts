// --coverage (#27.1): which lines and branches of the suite's own sources
// the tests ran. The modules are built with GCOV_PROFILE=y on a kernel with
// CONFIG_GCOV_KERNEL (kmodvm's debug kernel); after each test's rmmods the
// guest prints the .gcda files the kernel keeps for the build tree, and
// resets them for the next test. On the host, lcov reads each test's counts
// (build/coverage-tools.ts), keeps the records of the suite's files under
// their paths in the suite, and reports a line per test; after the last
// test, the suite's sum is an lcov tracefile, an HTML report and Cobertura
// XML in the run directory, and coverage_min is checked against it.
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { addUp, capture, cobertura, html, type ToolDirs } from '../../build/coverage-tools.ts';
import type { Timeouts } from '../../core/config.ts';
import { readInside } from '../../core/tree-fs.ts';
import { runStep, type StepSpec } from '../../guest/steps.ts';
import { parseGcdaDump } from '../../verdict/gcda-dump.ts';
import { belowMin, fileCoverage, ownRecords, summaryLine, type Totals, totalsOf } from '../../verdict/lcov.ts';
import type { CheckResult } from '../../verdict/model.ts';
import { fileSafe, type LoadedModule } from '../test-plan.ts';
import type { CheckRoom, CoverageChoice, GuestEnv } from './check.ts';

const GCOV = '/sys/kernel/debug/gcov';
const GCNO_MAX = 64 * 2 ** 20;

/** The .gcda files the kernel keeps for the tree, each "== PATH" and its base64; then every counter reset. */
export const gcdaStep = (tree: string, t: Timeouts): StepSpec => ({
  name: 'coverage',
  argv: [
    'sh',
    '-c',
    `mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug; d=${GCOV}$1; [ -d "$d" ] && find "$d" -name '*.gcda' | while read -r f; do echo "== \${f#${GCOV}}"; base64 -w0 < "$f"; echo; done; [ -e ${GCOV}/reset ] && echo 1 > ${GCOV}/reset; true`,
    'sh',
    tree,
  ],
  timeoutMs: t.command * 1000,
  failure: 'internal',
});

interface Sample {
  test: string;
  dir: string;
  info: string;
  totals: Totals;
  durationMs: number;
}

const failed = (message: string, evidence?: string): CheckResult => ({ name: 'coverage', ok: false, failure: 'internal', durationMs: 0, message, evidence });

/** One test's counts: the guest's .gcda files beside the tree's .gcno files, read by lcov, the suite's files kept. */
async function sampleOf(env: GuestEnv, m: { tree: string; kdir?: string }, o: CoverageChoice): Promise<Sample | CheckResult> {
  const t0 = Date.now();
  const tree = m.tree;
  const r = await runStep(env.guest.session, gcdaStep(tree, env.timeouts));
  await env.record(r);
  if (!r.ok) return failed(`the guest did not give its coverage counts: ${r.message}`, r.result.stderr);
  const { files, refused } = parseGcdaDump(r.result.stdout, tree);
  const test = env.test ?? 'suite';
  const base = path.join(env.runDir, 'coverage', 'tests', fileSafe(test));
  await rm(base, { recursive: true, force: true });
  for (const f of files) {
    await mkdir(path.dirname(path.join(base, f.rel)), { recursive: true });
    await writeFile(path.join(base, f.rel), f.data);
    // The build tree is the build's: its .gcno must be a regular file inside it, not a link to elsewhere (core/tree-fs.ts).
    const gcno = await readInside(tree, path.join(tree, f.rel.replace(/\.gcda$/, '.gcno')), GCNO_MAX).catch(() => undefined);
    if (gcno) await writeFile(path.join(base, f.rel.replace(/\.gcda$/, '.gcno')), gcno);
  }
  if (!files.length)
    return failed(
      "the kernel kept no coverage counts for the suite's modules",
      `${refused.length ? `refused: ${refused.join(', ')}\n` : ''}were they built with GCOV_PROFILE=y, on a kernel with CONFIG_GCOV_KERNEL?`,
    );
  const dirs: ToolDirs = { tree, kdir: m.kdir, out: env.runDir };
  const raw = await capture(base, `${base}.raw.info`, o.gcov, dirs);
  const own = ownRecords(raw, tree);
  const info = `${base}.info`;
  await writeFile(info, own);
  await rm(`${base}.raw.info`, { force: true });
  return { test, dir: base, info, totals: totalsOf(fileCoverage(own)), durationMs: Date.now() - t0 };
}

/** The suite's coverage: the tests' tracefiles added up, its HTML and Cobertura reports, and coverage_min. */
async function suiteCoverage(runDir: string, m: { tree: string; kdir?: string }, samples: readonly Sample[], o: CoverageChoice): Promise<CheckResult> {
  const t0 = Date.now();
  const out = path.join(runDir, 'coverage');
  const dirs: ToolDirs = { tree: m.tree, kdir: m.kdir, out: runDir };
  const info = path.join(out, 'lcov.info');
  const sum = await addUp(
    samples.map((s) => s.info),
    info,
    dirs,
  );
  await html(info, path.join(out, 'html'), dirs);
  await cobertura(
    samples.map((s) => s.dir),
    path.join(out, 'cobertura.xml'),
    o.gcov,
    dirs,
  );
  const totals = totalsOf(fileCoverage(sum));
  const short = o.min ? belowMin(totals, o.min) : [];
  const where = `lcov ${path.relative(runDir, info)}, html coverage/html/index.html, cobertura coverage/cobertura.xml`;
  const message = `${summaryLine(totals)} over ${samples.length} test${samples.length === 1 ? '' : 's'}`;
  if (!short.length) return { name: 'coverage', ok: true, durationMs: Date.now() - t0, message, evidence: where };
  return {
    name: 'coverage',
    ok: false,
    failure: 'coverage',
    durationMs: Date.now() - t0,
    message: `${message}: below coverage_min (${short.join(', ')})`,
    evidence: `${where}\nnext: add tests that reach the lines the HTML report shows unrun, or lower coverage_min`,
  };
}

export const coverage: CheckRoom = {
  id: 'coverage',
  about: "--coverage: the lines and branches of the suite's sources each test ran, and the suite's, with lcov, HTML and Cobertura reports",
  wanted: (choice) => Boolean(choice.coverage),
  create: ({ choice }) => {
    const o = choice.coverage as CoverageChoice;
    const samples: Sample[] = [];
    let at: { runDir: string; host: { tree: string; kdir?: string } } | undefined;
    return {
      id: 'coverage',
      afterUnload: async (env, modules: readonly LoadedModule[]) => {
        const host = modules.find((m) => m.host)?.host;
        const got = host ? await sampleOf(env, host, o).catch((e: Error) => failed(`coverage: ${e.message}`)) : failed('--coverage needs the host build');
        if (!('totals' in got)) return env.report?.('coverage', got);
        samples.push(got);
        at = { runDir: env.runDir, host: host as { tree: string; kdir?: string } };
        env.report?.('coverage', {
          name: 'coverage',
          ok: true,
          durationMs: got.durationMs,
          message: summaryLine(got.totals),
          evidence: `lcov ${path.relative(env.runDir, got.info)}`,
        });
      },
      judge: (e) => (e.steps?.coverage ? { results: e.steps.coverage } : undefined),
      afterRun: async () => {
        if (!at || !samples.length) return [failed('--coverage: no test gave coverage counts')];
        return [await suiteCoverage(at.runDir, at.host, samples, o).catch((e: Error) => failed(`coverage: ${e.message}`))];
      },
    };
  },
};
