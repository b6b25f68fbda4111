// Where a run's modules are built, and the host build started while the
// guest comes up.
import { existsSync } from 'node:fs';
import { COVERAGE_TOOLS } from '../build/coverage-tools.ts';
import { chooseBuildMode, hostAppCompiler, hostHasCompiler } from '../build/host-kbuild.ts';
import { type KernelFeature, kernelLacks } from '../build/kernel-features.ts';
import { sandboxUsable } from '../build/sandbox.ts';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { preflight } from '../host/preflight.ts';
import { headersKdir } from '../image/headers.ts';
import type { ImageInfo } from '../image/image.ts';
import { buildProgress } from '../suite/build-progress.ts';
import { hostBuildSuite, type SuiteHostBuild } from '../suite/host-build.ts';
import type { ResolvedSuite } from '../suite/resolve.ts';

/** Where the module is built for this image: the host when it has the kernel's compiler and the image's headers. */
export function buildModeFor(c: Pick<Config, 'build' | 'kernelBuildDir'>, img: ImageInfo, byo: boolean): { mode: 'host' | 'guest'; why: string; kdir: string } {
  const kdir = byo ? c.kernelBuildDir : headersKdir(img.dir, img.manifest.kernelVersion);
  const sandbox = sandboxUsable();
  if (byo && !sandbox.ok)
    throw new KmodvmError('setup', `--kernel-image builds the modules on the host, in a sandbox, and ${sandbox.why}`, {
      hint: 'install bubblewrap (apt-get install bubblewrap) on a host that allows user namespaces',
    });
  if (byo) return { mode: 'host', why: `--kernel-build-dir ${c.kernelBuildDir}`, kdir };
  return {
    ...chooseBuildMode(c.build, {
      gccMajor: img.manifest.kernelGccMajor,
      hostHasCompiler: hostHasCompiler(img.manifest.kernelGccMajor),
      headers: existsSync(kdir),
      sandbox,
    }),
    kdir,
  };
}

/** What the run's kernel must have (#27): KUnit for kunit: dirs, gcov for --coverage. */
export function wantedFeatures(rs: ResolvedSuite, o: { coverage?: boolean }): KernelFeature[] {
  const kunit = rs.suite.tests.filter((t) => t.kunit).map((t) => t.name);
  return [
    ...(kunit.length ? [{ option: 'CONFIG_KUNIT', what: `the suite's kunit: dirs (${kunit.join(', ')})` }] : []),
    ...(o.coverage ? [{ option: 'CONFIG_GCOV_KERNEL', what: '--coverage' }] : []),
  ];
}

/** A kernel without what the run needs is bad input, before anything boots: name the kernel that has it. */
export async function requireFeatures(kdir: string, kernel: string, want: readonly KernelFeature[]): Promise<void> {
  const lacked = await kernelLacks(kdir, want);
  if (!lacked.length) return;
  throw new KmodvmError(
    'usage',
    lacked.map((f) => `${f.what} ${f.what.startsWith('--') ? 'needs' : 'need'} a kernel with ${f.option}, and ${kernel} is built without it`).join('; '),
    {
      hint: "run on kmodvm's debug kernel, which has KUnit and gcov: --kernel debian-12-debug (docs/debug-kernel.md)",
    },
  );
}

/** The build mode, once the kernel is known to have what the run needs. */
export async function checkedBuildMode(
  c: Pick<Config, 'build' | 'kernelBuildDir' | 'debugKernel' | 'kernelImage' | 'coverage'>,
  img: ImageInfo,
  byo: boolean,
  rs: ResolvedSuite,
  log: (l: string) => void,
) {
  const build = buildModeFor(c, img, byo);
  // lcov and gcovr, installed when missing, before anything boots.
  if (c.coverage) await preflight(log, COVERAGE_TOOLS);
  await requireFeatures(build.kdir, c.debugKernel || c.kernelImage || img.manifest.kernelVersion, wantedFeatures(rs, c));
  if (c.coverage && build.mode !== 'host')
    throw new KmodvmError('usage', `--coverage reads the build's .gcno files on the host, and the modules are built in the guest (${build.why})`, {
      hint: "drop --build guest; the host build needs bubblewrap and the kernel's compiler (docs/coverage.md)",
    });
  return build;
}

/** What make is given for --coverage: kbuild's GCOV_PROFILE, for every object of the suite's modules, no Makefile change. */
export const COVERAGE_MAKE = ['GCOV_PROFILE=y'] as const;

/** The host build of a suite, started while the guest comes up; undefined when the build is the guest's. */
export function startHostBuild(
  c: Pick<Config, 'replay' | 'timeouts' | 'coverage'>,
  img: ImageInfo,
  rs: ResolvedSuite,
  tree: string,
  o: { kdir: string; mode: 'host' | 'guest'; niceness?: number; log?: (l: string) => void; verbose?: boolean },
): Promise<SuiteHostBuild> | undefined {
  if (o.mode !== 'host') return undefined;
  // A long build says how far it is (#29.17); with --verbose, kbuild's own lines.
  const progress = o.log && buildProgress({ log: o.log, verbose: !!o.verbose });
  const p = hostBuildSuite({
    suite: rs.suite,
    files: rs.files,
    tree,
    kdir: o.kdir,
    cc: hostAppCompiler(img.manifest.kernelGccMajor),
    timeoutMs: c.timeouts.build * 1000,
    replay: c.replay,
    niceness: o.niceness,
    onLine: progress?.onLine,
    onDirDone: progress?.done,
    extraMake: c.coverage ? COVERAGE_MAKE : undefined,
  });
  p.catch(() => undefined).finally(() => progress?.stop());
  return p;
}
