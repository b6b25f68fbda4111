// kmodvm gdb [--name N] [--batch FILE]: gdb on a running instance (kmodvm up,
// watch), with the symbols of every out-of-tree module loaded in it: the .ko
// with its debug info from the instance's own build tree, else the guest's copy.
import { existsSync } from 'node:fs';
import path from 'node:path';
import { glob } from 'zx';
import type { Config } from '../core/config.ts';
import type { RunResult } from '../core/end.ts';
import { KmodvmError } from '../core/errors.ts';
import { holdSigint } from '../core/signals.ts';
import { GDB_REQUIREMENT, moduleSymbols, startGdb } from '../debug/gdb.ts';
import { KERNEL_TEXT_COMMAND, kaslrOffset } from '../debug/gdb-script.ts';
import { runSymbols } from '../debug/kernel-symbols.ts';
import type { SshSession } from '../guest/ssh.ts';
import { preflight } from '../host/preflight.ts';
import { findImage } from '../image/image.ts';
import { connect, type InstanceState, requireRunning } from '../vm/instance.ts';
import { MUX_SOCK, muxResult } from '../vm/mux.ts';
import { gdbSocketOf } from '../vm/qemu-args.ts';

/** The guest's loaded modules that taint the kernel as out-of-tree (O): the ones built by kmodvm or the user. */
const OUT_OF_TREE = ['sh', '-c', 'grep -ls O /sys/module/*/taint; true'];

/** Where a module's .ko sits: the build tree's file of that name (the kernel writes - as _), without following links. */
async function hostKo(tree: string, name: string): Promise<string | undefined> {
  if (!existsSync(tree)) return undefined;
  const kos = await glob('**/*.ko', { cwd: tree, onlyFiles: true, followSymbolicLinks: false, deep: 8, ignore: ['**/.kmodvm-*/**'] });
  const hit = kos.find((f) => path.basename(f, '.ko').replace(/-/g, '_') === name);
  return hit && path.join(tree, hit);
}

/** The instance's guest for gdb's few commands: its kept connection (vm/mux.ts, no SSH handshake), else one of its own, made when first needed. */
function guestOf(s: InstanceState): Pick<SshSession, 'exec'> & { close: () => void } {
  let own: SshSession | undefined;
  const sock = path.join(s.dir, MUX_SOCK);
  return {
    exec: async (argv, o) => {
      const viaMux = await muxResult(sock, argv, o.timeoutMs);
      if (viaMux) return viaMux;
      own ??= await connect(s);
      return own.exec(argv, o);
    },
    close: () => own?.close(),
  };
}

/** The stock kernel's symbols for an instance of the current image (Debian's -dbg: cached, or fetched with --kernel-symbols), with KASLR's offset. */
async function kernelSymbols(
  c: Parameters<typeof gdbOnInstance>[0],
  s: { imageKey: string; kernelVersion: string },
  session: Pick<SshSession, 'exec'>,
  log: (l: string) => void,
): Promise<{ file: string; offset: bigint } | undefined> {
  const img = await findImage(c);
  if (!img || img.key !== s.imageKey || img.manifest.kernelVersion !== s.kernelVersion) return undefined;
  const file = await runSymbols({ ...c, debugKernel: '', kernelImage: '', kernelBuildDir: '' }, img, log);
  if (!file) return undefined;
  const text = await session.exec(KERNEL_TEXT_COMMAND, { timeoutMs: c.timeouts.command * 1000 });
  return { file, offset: kaslrOffset(text.stdout) };
}

export async function gdbOnInstance(
  c: Pick<Config, 'cacheDir' | 'name' | 'gdbBatch' | 'timeouts' | 'kernelSymbols' | 'mirror' | 'verbose' | 'recipe' | 'root'>,
  log: (l: string) => void,
): Promise<RunResult> {
  const s = await requireRunning(c, c.name, log);
  await preflight(log, [GDB_REQUIREMENT]);
  const batch = c.gdbBatch || undefined;
  if (!batch && !process.stdin.isTTY)
    throw new KmodvmError('usage', 'kmodvm gdb without --batch needs a terminal, and this one has none', { hint: 'give gdb a script: --batch FILE' });
  const session = guestOf(s);
  const dir = path.join(s.dir, 'gdb');
  const tree = path.join(s.dir, 'build');
  try {
    const listed = (await session.exec(OUT_OF_TREE, { timeoutMs: c.timeouts.command * 1000 })).stdout.split('\n');
    const names = listed.map((l) => /^\/sys\/module\/([\w-]+)\/taint$/.exec(l)?.[1]).filter((n): n is string => Boolean(n));
    const mods = await Promise.all(names.map(async (name) => ({ name, guestKo: `/sys/module/${name}`, hostKo: await hostKo(tree, name) })));
    // A module without a host copy (built in the guest) is looked for where kmodvm uploads: its .ko there.
    for (const m of mods.filter((x) => !x.hostKo)) {
      const f = await session.exec(['find', '/root/kmodvm', '-name', `${m.name}.ko`, '-type', 'f'], { timeoutMs: c.timeouts.command * 1000 });
      m.guestKo = f.stdout.split('\n')[0] || `${m.name}.ko`;
    }
    const syms = await moduleSymbols(session, mods, dir, c.timeouts.command * 1000);
    const vmlinux = await kernelSymbols(c, s, session, log);
    log(`gdb: ${syms.length ? `symbols of ${syms.map((m) => m.name).join(', ')}` : 'no out-of-tree module is loaded: only the kernel, without its symbols'}`);
    const here = path.join(process.cwd(), 'kmodvm.yaml');
    const release = batch ? () => {} : holdSigint();
    const g = await startGdb({
      socket: gdbSocketOf(path.join(s.dir, 'qmp.sock')),
      qmpSocket: path.join(s.dir, 'qmp.sock'),
      dir,
      plan: { modules: syms, substitute: existsSync(here) ? [[tree, process.cwd()]] : [], vmlinux, user: batch, batch: Boolean(batch) },
      readable: [tree, ...(batch ? [batch] : []), ...(existsSync(here) ? [process.cwd()] : []), ...(vmlinux ? [path.dirname(vmlinux.file)] : [])],
      timeoutMs: batch ? c.timeouts.app * 1000 : 86_400_000,
    });
    return await g.done.finally(release);
  } finally {
    session.close();
  }
}
