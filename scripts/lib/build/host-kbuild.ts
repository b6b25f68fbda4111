// Build mode. `guest` runs kbuild in the VM (hermetic, about 30 s under TCG:
// kbuild's compiler probes are slow there). `host` builds the module on the
// host against the very headers exported from the image, with the compiler
// the kernel was built with (Debian's headers name it, e.g. gcc-12), while
// the guest boots. `auto` picks host when that compiler is on the host.

import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { BuildMode } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { tail } from '../core/proc.ts';
import { copySource, mkdirInside, readInside, replaceInside, UnsafePath } from '../core/tree-fs.ts';
import { compilerDiagnostics } from '../guest/steps.ts';
import { findTool } from '../host/preflight.ts';
import { keepBuiltModSources, loadReplayPlan, replay, replayable } from './kbuild-replay.ts';
import { kdirArgs } from './kdir-args.ts';
import { buildEnv, runSandboxed } from './sandbox.ts';

export function chooseBuildMode(
  requested: BuildMode,
  o: { gccMajor?: number; hostHasCompiler: boolean; headers: boolean; sandbox?: { ok: boolean; why?: string } },
): { mode: 'host' | 'guest'; why: string } {
  if (requested === 'guest') return { mode: 'guest', why: '--build guest' };
  const sandbox = o.sandbox ?? { ok: true };
  const compiler = o.gccMajor ? `gcc-${o.gccMajor}` : "the kernel's compiler";
  if (requested === 'host') {
    if (!o.headers)
      throw new KmodvmError('usage', '--build host needs an image with exported headers', {
        hint: `rebuild the image: ${kmodvmCommand('image', 'build --force')}`,
      });
    if (!o.hostHasCompiler)
      throw new KmodvmError('setup', `--build host needs ${compiler} on the host, the compiler the guest kernel was built with`, {
        hint: `install it (apt-get install ${compiler}) or use --build guest`,
      });
    if (!sandbox.ok)
      throw new KmodvmError('setup', `--build host runs the build in a sandbox, and ${sandbox.why}`, {
        hint: 'install bubblewrap (apt-get install bubblewrap) where user namespaces are allowed, or use --build guest',
      });
    return { mode: 'host', why: '--build host' };
  }
  if (!sandbox.ok) return { mode: 'guest', why: `host builds run sandboxed, and ${sandbox.why}` };
  if (!o.headers) return { mode: 'guest', why: 'the image has no exported headers' };
  if (!o.hostHasCompiler) return { mode: 'guest', why: `${compiler}, which built the guest kernel, is not on the host` };
  return { mode: 'host', why: `the host has ${compiler}, which built the guest kernel` };
}

export interface HostBuild {
  ok: boolean;
  ko?: string;
  /** The file the guest gets, when it is not `ko` itself (the module without its debug sections). */
  upload?: string;
  durationMs: number;
  output: string;
  evidence?: string;
  annotations?: { file: string; line: number; col?: number; message: string }[];
}

const isProduct = (p: string): boolean => /\.(o|ko|mod|cmd)$|\.mod\.c$|modules\.order$|Module\.symvers$/.test(p);

/** The source files of a tree, relative and sorted: what is not a build product or a dot file, in subdirectories too. */
export async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  // Symlinked directories are not followed (a `loop -> .` would never end); a symlinked file counts as its target.
  for (const e of await readdir(dir, { recursive: true, withFileTypes: true })) {
    const r = path.relative(dir, path.join(e.parentPath, e.name));
    if (r.split('/').some((n) => isProduct(n) || n.startsWith('.'))) continue;
    if (e.isFile() || (e.isSymbolicLink() && (await stat(path.join(dir, r)).catch(() => undefined))?.isFile())) out.push(r);
  }
  return out.sort();
}

/** A hash of the module's sources (names and contents), to skip kbuild when nothing changed. */
export async function sourceHash(dir: string, salt: string, withContent: (name: string) => boolean = () => true): Promise<string> {
  const h = createHash('sha256').update(salt);
  for (const r of await sourceFiles(dir)) h.update(`\0${r}\0`).update(withContent(r) ? await readFile(path.join(dir, r)) : '');
  return h.digest('hex');
}

/** The shape of a module tree: file names, and the contents of all but .c/.h. Same shape, same kbuild commands. */
export const shapeHash = (dir: string, salt: string): Promise<string> => sourceHash(dir, salt, (n) => !/\.[ch]$/.test(n));

/** Whether kbuild's recorded commands can rebuild this tree (kbuild-replay.ts: not when it exports symbols). */
export async function treeReplayable(dir: string): Promise<boolean> {
  const texts = await Promise.all((await sourceFiles(dir)).filter((r) => /\.[ch]$/.test(r)).map((r) => readFile(path.join(dir, r), 'utf8')));
  return replayable(texts);
}

/** What hostMake is given. */
export interface HostMakeOptions {
  srcDir: string;
  outDir: string;
  product?: string;
  /** A product make may not write (modules.order may land below the dir): its absence is not a failure, and ko is undefined. */
  productOptional?: boolean;
  makeArgs: string[];
  /** make -jN: for kbuild (parallel-safe), not for an app's own Makefile. Not part of the key: it changes no product. */
  jobs?: number;
  hashSalt: string;
  timeoutMs: number;
  replayKdir?: string;
  niceness?: number;
  copied?: boolean;
  /** The one directory the build may write (the suite's build tree); default outDir. */
  writable?: string;
  /** What else it may read: the kernel tree (kbuildReadable). */
  readable?: string[];
  /** Each line make prints, as it prints it (a long build's progress, #29.17). */
  onLine?: (line: string) => void;
}

/**
 * Runs make on a copy of srcDir in outDir, never writing into srcDir. When
 * outDir already holds the product built from the same sources (a watch cycle
 * where only the other half changed), make is not run: a kbuild make with
 * nothing to do still costs seconds.
 */
export async function hostMake(o: HostMakeOptions): Promise<HostBuild> {
  const niceness = o.niceness ?? 10;
  // The tree the build may write: kmodvm reads and writes there only as core/tree-fs.ts does, never through what the build left.
  const [root, readable] = [o.writable ?? o.outDir, o.readable ?? []];
  // Everything the module's Makefile and kbuild run on the host runs in the sandbox (sandbox.ts).
  const jail = (cmd: string, args: string[], ro: { cwd?: string; timeoutMs: number; onLine?: (l: string) => void }) =>
    runSandboxed(cmd, args, { writable: [root], readable, cwd: ro.cwd }, { timeoutMs: ro.timeoutMs, onLine: ro.onLine });
  const stamp = path.join(o.outDir, '.kmodvm-sources');
  const shapeStamp = path.join(o.outDir, '.kmodvm-shape');
  const salt = buildSalt(o.hashSalt, o.makeArgs);
  const hash = await sourceHash(o.srcDir, salt);
  const shape = await shapeHash(o.srcDir, salt);
  // Without a named product (an app), make's exit status is the only witness.
  const product = path.join(o.outDir, o.product ?? '.kmodvm-sources');
  if (existsSync(product) && (await readStamp(root, stamp)) === hash) {
    return { ok: true, ko: product, durationMs: 0, output: 'sources unchanged since the last build: make not run\n' };
  }
  await rm(stamp, { force: true });
  if (!o.copied) await copySources(o.srcDir, o.outDir, root, (rel) => !isProduct(rel) && path.basename(rel) !== o.product);
  // Only .c/.h contents changed since a kbuild here: replay its recorded commands.
  const plan =
    o.replayKdir && existsSync(product) && (await readStamp(root, shapeStamp)) === shape && (await treeReplayable(o.srcDir))
      ? await loadReplayPlan(o.outDir)
      : undefined;
  const started = Date.now();
  let r = plan ? await replay(plan, o.replayKdir!, o.timeoutMs, { root, niceness, exec: jail }) : undefined;
  const replayed = r !== undefined && (r.exitCode === 0 || compilerDiagnostics(r.output).some((d) => d.severity !== 'warning'));
  if (!replayed) {
    await rm(shapeStamp, { force: true });
    // nice: the build runs while the guest boots on the same cores; the boot goes first
    // (niceness 0 on a guest that is already up: then the build is what is waited for).
    const j = o.jobs && o.jobs > 1 ? [`-j${o.jobs}`] : [];
    const m = await jail('nice', ['-n', String(niceness), 'make', ...j, '-C', o.outDir, ...o.makeArgs], { timeoutMs: o.timeoutMs, onLine: o.onLine });
    r = { ...m, output: m.stdout + m.stderr, skipped: 0, patched: 0 };
  }
  const skipped = (r!.skipped ? `, ${r!.skipped} up to date` : '') + (r!.patched ? `, ${r!.patched} patched: only its srcversion changed` : '');
  const how = replayed ? `kbuild's recorded commands replayed (${plan!.length}${skipped}); make not run\n` : '';
  const output = how + r!.output.split(`${o.outDir}/`).join(`${o.srcDir}/`);
  const durationMs = Date.now() - started;
  if (r!.exitCode !== 0 || (o.product !== undefined && !o.productOptional && !existsSync(product))) return failedBuild(output, o.srcDir, r!.reason, durationMs);
  const left = await recordBuilt(root, o.outDir, { stamp: [stamp, hash], shape: o.replayKdir ? [shapeStamp, shape] : undefined, keepSources: !replayed });
  if (left)
    return {
      ok: false,
      durationMs,
      output,
      evidence: `make succeeded, but the build left ${left.message}\nnext: a Makefile must not replace the directories it builds in`,
    };
  return { ok: true, ko: existsSync(product) ? product : undefined, durationMs, output };
}

/** A stamp the last build wrote, '' when there is none (or the build left something else there). */
const readStamp = (root: string, f: string): Promise<string> => readInside(root, f, 4096).then(String, () => '');

/** Every input of a build is in its key: the make arguments and the environment kbuild reads. */
const buildSalt = (salt: string, makeArgs: readonly string[]): string => [salt, ...makeArgs, ...buildEnv().map(([k, v]) => `${k}=${v}`)].join('\0');

/** After a build: its stamps, and (for a replayable kbuild) its .mod.c sources kept; what the build left in the way, when it did. */
async function recordBuilt(
  root: string,
  outDir: string,
  r: { stamp: [string, string]; shape?: [string, string]; keepSources: boolean },
): Promise<UnsafePath | undefined> {
  try {
    await replaceInside(root, ...r.stamp);
    if (r.shape) {
      await replaceInside(root, ...r.shape);
      if (r.keepSources) await keepBuiltModSources(root, outDir);
    }
    return undefined;
  } catch (e) {
    if (e instanceof UnsafePath) return e;
    throw e;
  }
}

/** Copies srcDir's regular files into outDir, keeping their times (make compares them), as new files: outDir may hold what an earlier build left. */
async function copySources(srcDir: string, outDir: string, root: string, keep: (rel: string) => boolean): Promise<void> {
  for (const e of await readdir(srcDir, { recursive: true, withFileTypes: true })) {
    const from = path.join(e.parentPath, e.name);
    const rel = path.relative(srcDir, from);
    if (!e.isFile() || !keep(rel)) continue;
    await copySource(root, from, path.join(outDir, rel));
  }
}

/**
 * The directories a build reads its kernel tree from: an image's exported
 * headers are a tree of their own (…/headers, whose -amd64 and -common
 * trees and linux-kbuild link to each other), any other kdir is itself.
 * An image exported before its -amd64 Makefile included the -common tree
 * by a relative path names it absolutely: that tree too.
 */
export async function kbuildReadable(kdir: string): Promise<string[]> {
  const root = headersRoot(kdir);
  const mk = await readFile(path.join(kdir, 'Makefile'), 'utf8').catch(() => '');
  const common = /^include (\/\S+)\/Makefile$/m.exec(mk)?.[1];
  // The named tree's own headers root: its scripts/ links to ../../lib/linux-kbuild-*.
  return common && !common.startsWith(`${root}/`) ? [root, headersRoot(common)] : [root];
}

/** An exported headers tree's top (…/headers), for a kernel tree inside one; any other tree is itself. */
const headersRoot = (tree: string): string => /^(.*\/headers)\/usr\/src\/linux-headers-[^/]+\/?$/.exec(tree)?.[1] ?? tree;

/** A failed make: the compiler's errors on the user's own files (make ran in the copy; a relative name there is the user's file), else make's tail. */
function failedBuild(output: string, srcDir: string, reason: string, durationMs: number): HostBuild {
  const diags = compilerDiagnostics(output)
    .filter((d) => d.severity !== 'warning')
    .map((d) => ({ ...d, file: path.resolve(srcDir, d.file) }));
  const annotations = diags.map((d) => ({ file: d.file, line: d.line, col: d.col, message: `${d.severity}: ${d.message}` }));
  const evidence = diags.length
    ? diags.map((d) => `${d.file}:${d.line}${d.col ? `:${d.col}` : ''}: ${d.severity}: ${d.message}`).join('\n')
    : `make ${reason}\n${tail(output, 25)}`;
  return { ok: false, durationMs, output, annotations, evidence };
}

/** Where the guest's copy of a host-built module is kept, under the build directory. */
export const GUEST_COPY_DIR = '.kmodvm-guest';

/**
 * The module as the guest gets it: without its debug sections, as
 * `make modules_install INSTALL_MOD_STRIP=1` and Debian's own packages install
 * modules. The kernel ignores them when it loads a module; they are ~97 % of
 * an unstripped .ko (521 KB against 16 KB for the demo), and every byte is
 * encrypted, sent and written under TCG. The host keeps the full .ko for
 * decoding. Written beside and renamed, so a failed strip leaves no half file.
 * When strip fails (or is missing), the guest gets the full .ko.
 */
export async function guestCopy(ko: string, timeoutMs: number, root = path.dirname(ko)): Promise<string> {
  const dir = path.join(path.dirname(ko), GUEST_COPY_DIR);
  const out = path.join(dir, path.basename(ko));
  // The build may have left a link where the copy's directory or the copy is: made as real ones, never followed.
  await mkdirInside(root, dir);
  const [k, o] = await Promise.all([lstat(ko), lstat(out).catch(() => undefined)]);
  if (!k.isFile()) throw new UnsafePath(ko, 'is not a regular file: the build left something else where its module should be');
  if (o?.isFile() && o.mtimeMs >= k.mtimeMs) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  await rm(tmp, { force: true });
  // strip reads an ELF file the module's build wrote: in the sandbox too, writing only beside it.
  const r = await runSandboxed('strip', ['--strip-debug', '-o', tmp, ko], { writable: [dir], readable: [path.dirname(ko)], tmp: false }, { timeoutMs });
  if (r.exitCode !== 0) {
    await rm(tmp, { force: true });
    return ko;
  }
  await rename(tmp, out);
  return out;
}

/** The module, built by kbuild on the host against kdir (the image's exported headers). */
export async function hostBuildModule(o: {
  moduleDir: string;
  outDir: string;
  kdir: string;
  moduleName: string;
  timeoutMs: number;
  replay?: boolean;
  niceness?: number;
}): Promise<HostBuild> {
  const b = await hostMake({
    srcDir: o.moduleDir,
    outDir: o.outDir,
    product: `${o.moduleName}.ko`,
    makeArgs: kdirArgs(o.kdir),
    jobs: os.availableParallelism(),
    readable: await kbuildReadable(o.kdir),
    hashSalt: o.kdir,
    timeoutMs: o.timeoutMs,
    replayKdir: o.replay === false ? undefined : o.kdir,
    niceness: o.niceness,
  });
  return b.ok && b.ko ? { ...b, upload: await guestCopy(b.ko, o.timeoutMs) } : b;
}

/**
 * The user app, built on the host and linked statically, so it runs on any
 * guest whatever the host's and the guest's C libraries are. It is built
 * while the guest boots, like the module.
 */
export function hostBuildApp(o: { appDir: string; outDir: string; appName: string; cc: string; timeoutMs: number; niceness?: number }): Promise<HostBuild> {
  return hostMake({
    srcDir: o.appDir,
    outDir: o.outDir,
    product: o.appName,
    makeArgs: [`CC=${o.cc} -static`],
    hashSalt: 'app',
    timeoutMs: o.timeoutMs,
    niceness: o.niceness,
  });
}

/** The host compiler for the app: the kernel's gcc when there, else gcc, else cc. */
export function hostAppCompiler(gccMajor: number | undefined): string | undefined {
  for (const cc of [gccMajor ? `gcc-${gccMajor}` : '', 'gcc', 'cc']) if (cc && findTool(cc)) return cc;
  return undefined;
}

export function hostHasCompiler(gccMajor: number | undefined): boolean {
  return gccMajor !== undefined && findTool(`gcc-${gccMajor}`) !== undefined && findTool('make') !== undefined;
}
