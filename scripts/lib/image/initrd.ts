// The lean initrd: Debian's busybox-static, the few modules the root disk
// needs (in dependency order from modules.dep) and qemu/initrd-init.sh,
// archived by GNU cpio. resolveLoadOrder() is pure.
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KmodvmError } from '../core/errors.ts';
import { run } from '../core/proc.ts';
import { stageEarlySshd } from './early-sshd.ts';

/** modules.dep: "kernel/a/b.ko: kernel/c.ko kernel/d.ko" → map path → deps. */
export function parseModulesDep(text: string): Map<string, string[]> {
  const m = new Map<string, string[]>();
  for (const line of text.split('\n')) {
    const i = line.indexOf(':');
    if (i <= 0) continue;
    m.set(
      line.slice(0, i).trim(),
      line
        .slice(i + 1)
        .trim()
        .split(/\s+/)
        .filter(Boolean),
    );
  }
  return m;
}

/** A module's name as the kernel sees it: basename without .ko[.xz|.zst|.gz], dashes as underscores. */
export function moduleName(p: string): string {
  return path
    .basename(p)
    .replace(/\.ko(\.(xz|zst|gz))?$/, '')
    .replace(/-/g, '_');
}

/** Paths (relative to /lib/modules/<kver>) to insmod, dependencies first, each once. */
export function resolveLoadOrder(deps: Map<string, string[]>, names: readonly string[]): string[] {
  const byName = new Map<string, string>();
  for (const p of deps.keys()) byName.set(moduleName(p), p);
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (p: string, chain: string[]): void => {
    if (seen.has(p)) return;
    if (chain.includes(p)) throw new Error(`module dependency cycle: ${[...chain, p].join(' -> ')}`);
    for (const d of deps.get(p) ?? []) visit(d, [...chain, p]);
    seen.add(p);
    order.push(p);
  };
  for (const n of names) {
    const p = byName.get(n.replace(/-/g, '_'));
    if (!p) {
      // Built into the kernel, or absent: modules.builtin decides; the caller checks.
      continue;
    }
    visit(p, []);
  }
  return order;
}

/**
 * The load order split into groups that share no module: the initrd loads the
 * groups in parallel (one per vCPU is enough; ext4's chain is the long one
 * under TCG) and each group in order. Groups are the connected components of
 * the dependency closures, each in the order of `order`.
 */
export function loadGroups(deps: Map<string, string[]>, order: readonly string[]): string[][] {
  const parent = new Map<string, string>(order.map((p) => [p, p]));
  const find = (p: string): string => {
    let r = p;
    while (parent.get(r) !== r) r = parent.get(r)!;
    return r;
  };
  for (const p of order) for (const d of deps.get(p) ?? []) if (parent.has(d)) parent.set(find(d), find(p));
  const groups = new Map<string, string[]>();
  for (const p of order) {
    const r = find(p);
    if (!groups.has(r)) groups.set(r, []);
    groups.get(r)!.push(p);
  }
  return [...groups.values()];
}

/** Names that are neither modules nor listed in modules.builtin. */
export function missingModules(deps: Map<string, string[]>, builtin: string, names: readonly string[]): string[] {
  const have = new Set([...deps.keys()].map(moduleName));
  const built = new Set(builtin.split('\n').filter(Boolean).map(moduleName));
  return names.filter((n) => !have.has(n.replace(/-/g, '_')) && !built.has(n.replace(/-/g, '_')));
}

/** Every path under dir, parents first, for cpio's list. */
export async function listTree(dir: string, rel = '.'): Promise<string[]> {
  const out = [rel];
  for (const n of (await readdir(path.join(dir, rel))).sort()) {
    const r = rel === '.' ? n : `${rel}/${n}`;
    if ((await stat(path.join(dir, r))).isDirectory()) out.push(...(await listTree(dir, r)));
    else out.push(r);
  }
  return out;
}

/** Builds the lean initrd from a rootfs tree into `out` (an uncompressed newc cpio: nothing to decompress under TCG). */
export async function buildInitrd(opts: {
  rootfs: string;
  kver: string;
  modules: readonly string[];
  initScript: string;
  work: string;
  out: string;
  earlySshd?: boolean;
}): Promise<string[]> {
  const modDir = path.join(opts.rootfs, 'lib/modules', opts.kver);
  const deps = parseModulesDep(await readFile(path.join(modDir, 'modules.dep'), 'utf8'));
  const builtin = await readFile(path.join(modDir, 'modules.builtin'), 'utf8').catch(() => '');
  const missing = missingModules(deps, builtin, opts.modules);
  if (missing.length)
    throw new KmodvmError('image', `the guest kernel ${opts.kver} has no module ${missing.join(', ')}`, {
      hint: 'fix initrdModules in qemu/kernels/<kernel>.json',
    });
  const order = resolveLoadOrder(deps, opts.modules);
  const stage = opts.work;
  for (const d of ['bin', 'dev', 'proc', 'sys', 'newroot', 'modules']) await mkdir(path.join(stage, d), { recursive: true });
  await copyFile(path.join(opts.rootfs, 'bin/busybox'), path.join(stage, 'bin/busybox'));
  await chmod(path.join(stage, 'bin/busybox'), 0o755);
  const names: string[] = [];
  const stagedName = (rel: string): string => `${moduleName(rel)}.ko`;
  for (const rel of order) {
    const src = path.join(modDir, rel);
    const name = `${moduleName(rel)}.ko`;
    if (/\.ko\.xz$/.test(rel)) {
      await copyFile(src, path.join(stage, 'modules', `${name}.xz`));
      const r = await run('xz', ['--decompress', path.join(stage, 'modules', `${name}.xz`)], { timeoutMs: 60_000 });
      if (r.exitCode !== 0) throw new KmodvmError('image', `cannot decompress ${rel}: ${r.reason}`, { evidence: r.stderr });
    } else if (/\.ko$/.test(rel)) {
      await copyFile(src, path.join(stage, 'modules', name));
    } else {
      throw new KmodvmError('image', `unsupported module compression: ${rel}`, { hint: 'only .ko and .ko.xz are handled' });
    }
    names.push(name);
  }
  await writeFile(path.join(stage, 'modules/order'), names.join('\n') + '\n');
  let g = 0;
  for (const group of loadGroups(deps, order)) await writeFile(path.join(stage, `modules/group.${++g}`), group.map(stagedName).join('\n') + '\n');
  if (opts.earlySshd) await stageEarlySshd(opts.rootfs, stage);
  await writeFile(path.join(stage, 'init'), opts.initScript, { mode: 0o755 });
  const files = await listTree(stage);
  const r = await run('cpio', ['--create', '--format=newc', '--quiet', '--owner=0:0', '-O', opts.out], {
    cwd: stage,
    input: files.join('\n') + '\n',
    timeoutMs: 120_000,
  });
  if (r.exitCode !== 0) throw new KmodvmError('image', `cpio failed: ${r.reason}`, { evidence: r.stderr });
  return names;
}

/** Debian's busybox, taken from a built lean initrd (for the floor and for kernels of your own). */
export async function extractBusybox(leanInitrd: string, work: string): Promise<string> {
  await mkdir(work, { recursive: true });
  const r = await run('cpio', ['-i', '-d', '--quiet', '-F', leanInitrd, 'bin/busybox'], { cwd: work, timeoutMs: 60_000 });
  if (r.exitCode !== 0) throw new KmodvmError('image', `cannot take busybox out of ${leanInitrd} (${r.reason})`, { evidence: r.stderr });
  return path.join(work, 'bin/busybox');
}

/** An initrd with busybox and the given /init and no modules: for a kernel with virtio and ext4 built in. */
export async function genericInitrd(o: { leanInitrd: string; initScript: string; work: string; out: string }): Promise<void> {
  await extractBusybox(o.leanInitrd, o.work);
  for (const d of ['dev', 'proc', 'sys', 'newroot', 'modules']) await mkdir(path.join(o.work, d), { recursive: true });
  await writeFile(path.join(o.work, 'modules/order'), '');
  await writeFile(path.join(o.work, 'init'), o.initScript, { mode: 0o755 });
  const r = await run('cpio', ['--create', '--format=newc', '--quiet', '--owner=0:0', '-O', o.out], {
    cwd: o.work,
    input: (await listTree(o.work)).join('\n') + '\n',
    timeoutMs: 60_000,
  });
  if (r.exitCode !== 0) throw new KmodvmError('image', `cpio failed: ${r.reason}`, { evidence: r.stderr });
}
