// The host build of a suite: the suite root's files are copied into a build
// tree (so a header shared by module and app, ../uapi/foo.h, is where the
// Makefiles expect it), then each module dir is built in order with kbuild
// against the image's headers, every later dir getting the earlier dirs'
// Module.symvers through KBUILD_EXTRA_SYMBOLS, then each app dir with the
// host's compiler, linked statically. The module names come from each dir's
// modules.order.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { glob } from 'zx';
import { contextEvidence, errorContexts } from '../build/gcc-context.ts';
import { guestCopy, type HostBuild, hostMake, kbuildReadable } from '../build/host-kbuild.ts';
import { KDIR_NAMES, kdirArgs } from '../build/kdir-args.ts';
import { missingConfigHint } from '../build/kernel-exports.ts';
import { copySource, readInside, sourceMode, UnsafePath } from '../core/tree-fs.ts';
import type { UploadPart } from '../guest/upload.ts';
import type { CheckResult } from '../verdict/model.ts';
import { hostPaths, type Suite, srcPath } from './load.ts';
import { type BuiltModule, modulesFromOrder } from './modules-order.ts';

export interface DirBuild {
  dir: string;
  kind: 'module' | 'app';
  build: HostBuild;
  modules: (BuiltModule & { hostKo: string; guestRel: string })[];
  /** The modules.order used, relative to the dir: at its top, or below it (#29.9: lttng builds with M=$(PWD)/src). */
  order?: string;
  /** What the check says instead of "does not build", when make succeeded. */
  message?: string;
}
export interface SuiteHostBuild {
  ok: boolean;
  tree: string;
  /** The kernel tree it was built against (kbuild ran there: the objects' relative paths are its). */
  kdir: string;
  dirs: DirBuild[];
  /** The apps' products, relative to the tree (they travel with the sources). */
  products: string[];
  /** The modules as the guest gets them (without debug sections), each to its place beside its sources. */
  moduleParts: UploadPart[];
  durationMs: number;
}

/**
 * Copies the files into tree, keeping their times (make compares them); a
 * file whose size and mtime match is left alone. The tree holds what the
 * last build left: each file is written as a new one (core/tree-fs.ts), so a
 * link the build put in its place is replaced, not written through.
 */
export async function syncTree(suite: Pick<Suite, 'root' | 'mounts'>, files: readonly string[], tree: string): Promise<void> {
  for (const f of files) {
    const from = srcPath(suite, f);
    const to = path.join(tree, f);
    const [a, b] = await Promise.all([stat(from), lstat(to).catch(() => undefined)]);
    if (b?.isFile() && b.size === a.size && b.mtimeMs === a.mtimeMs && (b.mode & 0o777) === sourceMode(a.mode)) continue;
    // A suite's own link (alias.c -> a.c) was checked by suiteFiles to stay inside it: its target is what is copied.
    await copySource(tree, await realpath(from), to);
  }
}

/** A hash of the files outside every module and app dir (shared headers): their change rebuilds every dir. */
async function sharedHash(suite: Pick<Suite, 'root' | 'mounts'>, files: readonly string[], dirs: readonly string[]): Promise<string> {
  const h = createHash('sha256');
  for (const f of files) {
    if (dirs.some((d) => f === d || f.startsWith(`${d}/`)) || !/\.(h|c|S|mk)$|(^|\/)(Makefile|Kbuild)$/.test(f)) continue;
    h.update(`\0${f}\0`).update(await readFile(srcPath(suite, f)));
  }
  return h.digest('hex');
}

export interface HostBuildInput {
  suite: Suite;
  files: readonly string[];
  tree: string;
  kdir: string;
  cc?: string;
  timeoutMs: number;
  replay: boolean;
  niceness?: number;
  /** Each line a module dir's make prints, as it prints it (#29.17). */
  onLine?: (dir: string, line: string) => void;
  /** A module dir's make has ended. */
  onDirDone?: (dir: string) => void;
  /** More make arguments for every module dir (the static checks' W=1 C=2 CHECK=sparse). */
  extraMake?: readonly string[];
}

/** What the suite's host build has made so far. */
interface Made {
  dirs: DirBuild[];
  symvers: string[];
  products: string[];
  moduleParts: UploadPart[];
}

export async function hostBuildSuite(i: HostBuildInput): Promise<SuiteHostBuild> {
  const t0 = Date.now();
  const { suite, tree } = i;
  await mkdir(tree, { recursive: true });
  await syncTree(suite, i.files, tree).catch(async (e) => {
    if (!(e instanceof UnsafePath)) throw e;
    // The last build turned a directory of its tree into a link: the tree is kmodvm's cache, made again from the sources.
    await rm(tree, { recursive: true, force: true });
    await mkdir(tree, { recursive: true });
    await syncTree(suite, i.files, tree);
  });
  const shared = await sharedHash(
    suite,
    i.files,
    [...suite.modules, ...suite.apps].map((d) => d.dir),
  );
  const made: Made = { dirs: [], symvers: [], products: [], moduleParts: [] };
  const result = (ok: boolean): SuiteHostBuild => ({
    ok,
    tree,
    kdir: i.kdir,
    dirs: made.dirs,
    products: made.products,
    moduleParts: made.moduleParts,
    durationMs: Date.now() - t0,
  });
  for (const m of suite.modules) if (!(await buildModuleDir(i, m, shared, made))) return result(false);
  for (const a of suite.apps) if (!(await buildAppDir(i, a, shared, made))) return result(false);
  return result(true);
}

/** Host paths in make's output, not the build tree's; a compiler error's evidence with its context and the user's own line (#29.7). */
const mapPaths = (suite: Suite, tree: string, b: HostBuild): HostBuild => {
  const output = hostPaths(suite, b.output, tree);
  const mapped = { ...b, output, evidence: b.evidence && hostPaths(suite, b.evidence, tree) };
  if (b.ok) return mapped;
  const roots = [suite.root, ...(suite.mounts ?? []).map((m) => m.abs)].map((r) => `${r.replace(/\/$/, '')}/`);
  const contexts = errorContexts(output, (f) => roots.some((r) => f.startsWith(r)));
  if (!contexts.length) return mapped;
  const origins = contexts.flatMap((c) => (c.origin ? [{ ...c.origin, message: `the error below comes from here: ${c.error}` }] : []));
  return { ...mapped, evidence: contextEvidence(contexts), annotations: [...origins.map(({ macro: _, ...a }) => a), ...(b.annotations ?? [])] };
};

/** One module dir: make (each later dir gets the earlier ones' symbols), then each module modules.order lists, stripped for the upload. */
async function buildModuleDir(i: HostBuildInput, m: Suite['modules'][number], shared: string, made: Made): Promise<boolean> {
  const out = path.join(i.tree, m.dir);
  const extra = made.symvers.length ? [`KBUILD_EXTRA_SYMBOLS=${made.symvers.join(' ')}`] : [];
  const b = mapPaths(
    i.suite,
    i.tree,
    await hostMake({
      srcDir: m.abs,
      outDir: out,
      product: 'modules.order',
      productOptional: true,
      // kbuild builds a dir's objects in parallel: lttng's cold build was 297 s serial, 249 s with -j2 (#29.17).
      jobs: os.availableParallelism(),
      makeArgs: [...kdirArgs(i.kdir), ...extra, ...(i.extraMake ?? []), ...(m.make ?? []), ...(m.target ? [m.target] : [])],
      readable: await kbuildReadable(i.kdir),
      hashSalt: `${i.kdir}\0${shared}`,
      timeoutMs: i.timeoutMs,
      replayKdir: i.replay ? i.kdir : undefined,
      niceness: i.niceness,
      copied: true,
      writable: i.tree,
      onLine: i.onLine && ((l) => i.onLine!(m.dir, l)),
    }),
  );
  i.onDirDone?.(m.dir);
  const d: DirBuild = { dir: m.dir, kind: 'module', build: b, modules: [] };
  made.dirs.push(d);
  if (!b.ok) return failedDir(i, m, d);
  const got = await listedModules(i, m, d);
  if (!got) return false;
  const { found, orderDir, listed } = got;
  for (const bm of listed) {
    const hostKo = path.join(orderDir, bm.ko);
    if (!(await lstat(hostKo).catch(() => undefined))?.isFile()) {
      d.build = { ...b, ok: false, evidence: `modules.order lists ${bm.ko}, which make did not write as a regular file` };
      return false;
    }
    const copy = await guestCopy(hostKo, i.timeoutMs, i.tree).catch((e) => (e instanceof UnsafePath ? e : Promise.reject(e)));
    if (copy instanceof UnsafePath) {
      d.build = { ...b, ok: false, evidence: `make succeeded, but the build left ${copy.message}` };
      return false;
    }
    const guestRel = path.join(m.dir, path.dirname(found), bm.ko);
    d.modules.push({ ...bm, hostKo, guestRel });
    addModulePart(made.moduleParts, { localDir: path.dirname(copy), sub: path.dirname(guestRel), file: path.basename(copy) });
  }
  if (existsSync(path.join(out, 'Module.symvers'))) made.symvers.push(path.join(out, 'Module.symvers'));
  return true;
}

/** A dir that did not build: when its undefined symbols are ones the kernel could export with an option it is built without, name the option (#25.7). */
async function failedDir(i: HostBuildInput, m: Suite['modules'][number], d: DirBuild): Promise<false> {
  const b = d.build;
  const hint = await missingConfigHint(i.kdir, b.output, 'this kernel');
  if (hint) {
    d.build = { ...b, evidence: `${b.evidence ?? ''}\n${hint}`.trim() };
    d.message = `the module in ${m.dir} needs what this kernel is built without (${[...new Set([...hint.matchAll(/needs (CONFIG_\w+)/g)].map((x) => x[1]))].join(', ')})`;
  }
  return false;
}

/** The modules a built dir's modules.order lists (found at its top or below it, #29.9), or undefined with the dir's failure said. */
async function listedModules(i: HostBuildInput, m: Suite['modules'][number], d: DirBuild) {
  const b = d.build;
  const out = path.join(i.tree, m.dir);
  const found = await findOrder(out);
  if (!found) {
    const evidence = `make succeeded (exit 0), but wrote no modules.order in ${m.dir} or below it (kmodvm looked in ${m.dir}/ and its subdirectories, 4 deep)\nnext: does the Makefile pass M= a directory of this tree to the kernel's make, and build obj-m?`;
    d.build = { ...b, ok: false, evidence };
    d.message = `make succeeded but wrote no modules.order in ${m.dir}`;
    return undefined;
  }
  d.order = found;
  const orderDir = path.join(out, path.dirname(found));
  // Written by the build: a regular file of a sane size, or the build failed (a FIFO would hang the read).
  const order = await readInside(i.tree, path.join(out, found), 4 * 2 ** 20).then(
    (x) => x.toString('utf8'),
    (e: Error) => e,
  );
  if (order instanceof Error) {
    d.build = { ...b, ok: false, evidence: `make succeeded, but kmodvm cannot read ${path.join(m.dir, found)}: ${order.message}` };
    return undefined;
  }
  const listed = modulesFromOrder(order, orderDir);
  if (!listed.length) {
    d.build = {
      ...b,
      ok: false,
      evidence: `make succeeded but ${path.join(m.dir, found)} lists no module\nnext: does the Makefile build with obj-m, and pass M= the directory it is in?`,
    };
    return undefined;
  }
  return { found, orderDir, listed };
}

/** The modules.order kbuild wrote for a dir: at its top, else the shallowest below it (not in kmodvm's own dirs). */
export async function findOrder(out: string): Promise<string | undefined> {
  if ((await lstat(path.join(out, 'modules.order')).catch(() => undefined))?.isFile()) return 'modules.order';
  const below = await glob('**/modules.order', { cwd: out, deep: 4, onlyFiles: true, followSymbolicLinks: false, ignore: ['**/.kmodvm-*/**'] });
  return below.sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))[0];
}

/**
 * The guest copy of a module joins the upload part of its directory: one
 * Makefile that builds two modules makes two copies in one directory, and
 * one part per module staged the same directory twice (EEXIST at upload).
 */
export function addModulePart(parts: UploadPart[], m: { localDir: string; sub: string; file: string }): void {
  const same = parts.find((p) => p.localDir === m.localDir && p.sub === m.sub);
  if (same) same.files = [...(same.files ?? []), m.file];
  else parts.push({ localDir: m.localDir, sub: m.sub, files: [m.file] });
}

/** One app dir: make with the host's static compiler; its new files go to the guest. */
async function buildAppDir(i: HostBuildInput, a: Suite['apps'][number], shared: string, made: Made): Promise<boolean> {
  if (!i.cc) {
    const evidence = 'no C compiler on the host (gcc or cc)\nnext: install gcc, or use --build guest';
    made.dirs.push({ dir: a.dir, kind: 'app', modules: [], build: { ok: false, durationMs: 0, output: '', evidence } });
    return false;
  }
  const b = mapPaths(
    i.suite,
    i.tree,
    await hostMake({
      srcDir: a.abs,
      outDir: path.join(i.tree, a.dir),
      makeArgs: [`CC=${i.cc} -static`],
      hashSalt: `app\0${shared}`,
      timeoutMs: i.timeoutMs,
      niceness: i.niceness,
      copied: true,
      writable: i.tree,
    }),
  );
  made.dirs.push({ dir: a.dir, kind: 'app', build: b, modules: [] });
  if (!b.ok) return false;
  made.products.push(...(await appProducts(i.tree, a.dir, i.files)));
  return true;
}

/** What an app's make wrote that the guest needs: the new files of its dir, less objects and stamps. */
async function appProducts(tree: string, dir: string, sources: readonly string[]): Promise<string[]> {
  const have = new Set(sources);
  const out: string[] = [];
  for (const e of await readdir(path.join(tree, dir), { recursive: true, withFileTypes: true })) {
    if (!e.isFile()) continue;
    const rel = path.relative(tree, path.join(e.parentPath, e.name));
    if (have.has(rel) || /\.(o|d|a)$|(^|\/)\.kmodvm-/.test(rel)) continue;
    out.push(rel);
  }
  return out.sort();
}

/** One check per built dir. */
export function buildChecks(b: SuiteHostBuild, where = 'on the host'): CheckResult[] {
  const many = (k: 'module' | 'app'): boolean => b.dirs.filter((d) => d.kind === k).length > 1;
  return b.dirs.map((d) => {
    const name = `build-${d.kind}${many(d.kind) ? `:${d.dir}` : ''}`;
    const what = d.modules.length
      ? ` (${d.modules.map((m) => m.name).join(', ')}${d.order && d.order !== 'modules.order' ? `, from ${d.dir}/${d.order}` : ''})`
      : '';
    return d.build.ok
      ? { name, ok: true, durationMs: d.build.durationMs, message: `${where}${what}${d.kind === 'module' ? `; make got ${KDIR_NAMES.join(', ')}` : ''}` }
      : {
          name,
          ok: false,
          failure: 'build' as const,
          durationMs: d.build.durationMs,
          message: d.message ? `${d.message} (${where})` : `the ${d.kind} in ${d.dir} does not build (${where})`,
          evidence:
            d.build.evidence && (d.message ? d.build.evidence : `${d.build.evidence}\nnext: fix the code, or try --build guest to build it inside the VM`),
          annotations: d.build.annotations,
        };
  });
}
