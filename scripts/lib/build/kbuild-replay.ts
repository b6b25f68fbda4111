// A fast rebuild for the edit loop: when only .c/.h contents changed since a
// successful kbuild in the same tree, run again the commands kbuild recorded
// in its .cmd files (compile + objtool per object, modpost, the .mod.o, the
// link), as make would, without make's second of Makefile parsing and
// compiler probes. Anything unexpected returns undefined: the caller runs
// make. The parsing is pure; replay() runs the commands.
import { readdir, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import type { RunResult } from '../core/end.ts';
import { run } from '../core/proc.ts';
import { copyInside, readInside, replaceInside, UnsafePath } from '../core/tree-fs.ts';

/** Undoes kbuild's make-cmd escaping in a .cmd file ("$" written as "$$", "#" as "$(pound)"). */
export function unescapeMakeCmd(s: string): string {
  return s.replace(/\$\$|\$\(pound\)/g, (m) => (m === '$$' ? '$' : '#'));
}

/** The command a .cmd file recorded for its target: the "cmd_<target> := …" line. */
export function recordedCommand(cmdFile: string, target: string): string | undefined {
  const line = cmdFile.split('\n').find((l) => l.startsWith(`cmd_${target} := `));
  return line === undefined ? undefined : unescapeMakeCmd(line.slice(`cmd_${target} := `.length)).trim();
}

/** The .cmd file kbuild keeps for a target: dir/.name.cmd. */
export const cmdFileOf = (target: string): string => path.join(path.dirname(target), `.${path.basename(target)}.cmd`);

/**
 * The commands to rebuild every module of an external-module tree, in order:
 * each object's compile, modpost, then each module's .mod.o and link.
 * modulesOrder lists the .ko paths; modFiles maps a .ko to its .mod file's text
 * (the objects); cmds maps a target to its .cmd file's text.
 */
export function replayPlan(o: { moduleDir: string; modulesOrder: string; modFiles: Map<string, string>; cmds: Map<string, string> }): string[] | undefined {
  const kos = o.modulesOrder
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  if (!kos.length) return undefined;
  const out: string[] = [];
  const need = (target: string): boolean => {
    const text = o.cmds.get(target);
    const c = text === undefined ? undefined : recordedCommand(text, target);
    if (!c) return false;
    out.push(c);
    return true;
  };
  for (const ko of kos) {
    const objs = (o.modFiles.get(ko) ?? '').split(/\s+/).filter(Boolean);
    if (!objs.length) return undefined;
    for (const obj of objs) if (!need(obj)) return undefined;
  }
  if (!need(path.join(o.moduleDir, 'Module.symvers'))) return undefined;
  for (const ko of kos) {
    if (!need(ko.replace(/\.ko$/, '.mod.o')) || !need(ko)) return undefined;
  }
  return out;
}

/** The most kmodvm reads of a .mod.c (a few KiB) and of a .mod.o or a .cmd file (a few tens). */
const MOD_C_MAX = 4 * 2 ** 20;
const MOD_O_MAX = 16 * 2 ** 20;

/**
 * Reads what replayPlan needs from a built tree. at maps a path of the tree
 * (as kbuild wrote it) to where the file is read: a record of a guest build
 * kept on the host. Every file read is a regular file inside root (the
 * tree, or the record's directory), never a link out, a FIFO or a device:
 * the paths come from files the build wrote.
 */
export async function loadReplayPlan(moduleDir: string, o: { at?: (p: string) => string; root?: string } = {}): Promise<string[] | undefined> {
  const at = o.at ?? ((p: string) => p);
  const root = o.root ?? moduleDir;
  const read = (p: string): Promise<string | undefined> => readInside(root, at(p), MOD_O_MAX).then(String, () => undefined);
  const modulesOrder = await read(path.join(moduleDir, 'modules.order'));
  if (modulesOrder === undefined) return undefined;
  const modFiles = new Map<string, string>();
  const cmds = new Map<string, string>();
  const targets: string[] = [path.join(moduleDir, 'Module.symvers')];
  for (const ko of modulesOrder
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean)) {
    const mod = await read(ko.replace(/\.ko$/, '.mod'));
    if (mod === undefined) return undefined;
    modFiles.set(ko, mod);
    targets.push(...mod.split(/\s+/).filter(Boolean), ko.replace(/\.ko$/, '.mod.o'), ko);
  }
  for (const t of targets) {
    const text = await read(cmdFileOf(t));
    if (text !== undefined) cmds.set(t, text);
  }
  return replayPlan({ moduleDir, modulesOrder, modFiles, cmds });
}

/**
 * kbuild also runs steps the .cmd files do not record (the symbol-version CRCs
 * of exported symbols, the local-export check): a module that exports symbols
 * is always built by make. sources: the .c/.h files' contents.
 */
export function replayable(sources: readonly string[]): boolean {
  return !sources.some((s) => /\bEXPORT_(?:SYMBOL|SYMBOL_GPL|SYMBOL_NS|SYMBOL_NS_GPL)\b/.test(s));
}

/**
 * The .mod.o a recorded command builds from its .mod.c, when it is one. modpost
 * rewrites a .mod.c only when its contents change, so, as make does, that
 * compile is skipped while the .mod.o is newer than the .mod.c.
 */
export function modObjectCommand(cmd: string): { obj: string; src: string } | undefined {
  const m = / -c -o (\S+\.mod\.o) (\S+\.mod\.c)$/.exec(cmd);
  return m ? { obj: m[1], src: m[2] } : undefined;
}

const mtime = (p: string): Promise<number | undefined> =>
  stat(p).then(
    (s) => s.mtimeMs,
    () => undefined,
  );

/**
 * The change from the .mod.c a .mod.o was compiled from to the .mod.c modpost
 * just wrote, when it is only the srcversion: Debian's kernel
 * (MODULE_SRCVERSION_ALL) gives every code edit a new srcversion, a hash of
 * the module's sources of fixed length, and nothing else in the .mod.c moves
 * unless the module's imports or dependencies do.
 */
export function srcversionChange(built: string, now: string): { from: string; to: string } | undefined {
  const a = built.split('\n');
  const b = now.split('\n');
  if (a.length !== b.length) return undefined;
  const re = /^MODULE_INFO\(srcversion, "([0-9A-F]+)"\);$/;
  let change: { from: string; to: string } | undefined;
  for (let i = 0; i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const x = re.exec(a[i]);
    const y = re.exec(b[i]);
    if (change || !x || !y || x[1].length !== y[1].length) return undefined;
    change = { from: x[1], to: y[1] };
  }
  return change;
}

/**
 * The .mod.o with its srcversion replaced, when the old one is in it exactly
 * once. gcc's output for a .mod.c that differs only in that string of the
 * same length differs only in that string (checked byte for byte against a
 * compile, test/lib/build/kbuild-replay.test.ts), so this is the compile's result
 * without the compile's 0.3–0.45 s.
 */
export function patchSrcversion(obj: Buffer, c: { from: string; to: string }): Buffer | undefined {
  const from = Buffer.from(`srcversion=${c.from}\0`);
  const i = obj.indexOf(from);
  if (i < 0 || obj.indexOf(from, i + 1) >= 0) return undefined;
  const out = Buffer.from(obj);
  Buffer.from(`srcversion=${c.to}\0`).copy(out, i);
  return out;
}

/** Where the .mod.c a .mod.o was last compiled from is kept. */
export const builtModSource = (src: string): string => path.join(path.dirname(src), `.${path.basename(src)}.kmodvm-built`);

/** After a make in dir: each .mod.o there is from the .mod.c beside it; keep that for the next replay's patch. */
export async function keepBuiltModSources(root: string, dir: string): Promise<void> {
  for (const f of (await readdir(dir)).filter((n) => n.endsWith('.mod.c'))) await keepBuilt(root, path.join(dir, f));
}

/** Keeps the .mod.c a .mod.o came from; one that is not a regular file in the tree is not kept (its object is then compiled, never patched). */
const keepBuilt = (root: string, src: string): Promise<void> =>
  copyInside(root, src, builtModSource(src), MOD_C_MAX).catch((e) => (e instanceof UnsafePath ? rm(builtModSource(src), { force: true }) : Promise.reject(e)));

async function patchModObject(root: string, mod: { obj: string; src: string }): Promise<boolean> {
  const missing = (): undefined => undefined;
  const text = (b: Buffer): string => b.toString('utf8');
  // The paths come from kbuild's .cmd files, which the build wrote: read and written only inside its tree.
  const [built, now, obj] = await Promise.all([
    readInside(root, builtModSource(mod.src), MOD_C_MAX).then(text, missing),
    readInside(root, mod.src, MOD_C_MAX).then(text, missing),
    readInside(root, mod.obj, MOD_O_MAX).catch(missing),
  ]);
  if (built === undefined || now === undefined || obj === undefined) return false;
  const change = srcversionChange(built, now);
  const out = change && patchSrcversion(obj, change);
  if (!out) return false;
  await replaceInside(root, mod.obj, out);
  await replaceInside(root, builtModSource(mod.src), now);
  return true;
}

/** Runs the plan in kdir, as make -C kdir would (each command through sh -e, stopping at the first failure). */
export async function replay(
  plan: readonly string[],
  kdir: string,
  timeoutMs: number,
  o: {
    /** The build tree the module's objects are in: kmodvm reads and writes only there, never through a link (core/tree-fs.ts). */
    root: string;
    niceness?: number;
    /** How a command runs: in the host build's sandbox (sandbox.ts); as it is only in tests. */
    exec?: (cmd: string, args: string[], o: { cwd: string; timeoutMs: number }) => Promise<RunResult>;
  },
): Promise<RunResult & { output: string; skipped: number; patched: number }> {
  const deadline = Date.now() + timeoutMs;
  const exec = o.exec ?? ((cmd, args, ro) => run(cmd, args, ro));
  const niceness = o.niceness ?? 10;
  let output = '';
  let last: RunResult | undefined;
  let skipped = 0;
  let patched = 0;
  for (const cmd of plan) {
    const mod = modObjectCommand(cmd);
    if (mod) {
      const [objT, srcT] = await Promise.all([mtime(mod.obj), mtime(mod.src)]);
      if (objT !== undefined && srcT !== undefined && objT > srcT) {
        skipped++;
        continue;
      }
      if (await patchModObject(o.root, mod)) {
        patched++;
        continue;
      }
    }
    // kbuild's own recorded command line, run the way kbuild's `cmd` macro does: set -e, so a failed
    // compile stops before objtool and the link (which would otherwise reuse the old object).
    last = await exec('nice', ['-n', String(niceness), 'sh', '-e', '-c', cmd], { cwd: kdir, timeoutMs: Math.max(1000, deadline - Date.now()) });
    output += last.stdout + last.stderr;
    if (last.exitCode !== 0) break;
    if (mod) await keepBuilt(o.root, mod.src);
  }
  // Every command up to date or patched: nothing ran, nothing failed.
  const none: RunResult = { command: '', exitCode: 0, signal: undefined, timedOut: false, stdout: '', stderr: '', durationMs: 0, reason: 'exited 0' };
  return { ...(last ?? none), output, skipped, patched };
}
