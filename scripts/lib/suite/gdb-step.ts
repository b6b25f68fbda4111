// test --gdb TEST: gdb attached to the guest after the test's modules are
// loaded, with their symbols at their real addresses and the build tree's
// paths mapped to the suite's; the test's command runs when gdb lets the
// guest go, and the modules are unloaded only after gdb has ended (a
// breakpoint left in freed module text would be written back into it).
// Its result is a step of the test: gdb's exit and, in batch mode, its output.
import { existsSync, statSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { tail } from '../core/proc.ts';
import { holdSigint } from '../core/signals.ts';
import { settlesWithin } from '../core/wait.ts';
import { GDB_REQUIREMENT, moduleFile, moduleSymbols, startGdb } from '../debug/gdb.ts';
import { KERNEL_TEXT_COMMAND, kaslrOffset } from '../debug/gdb-script.ts';
import type { Guest } from '../guest/steps.ts';
import { preflight } from '../host/preflight.ts';
import type { CheckResult } from '../verdict/model.ts';
import { gdbSocketOf } from '../vm/qemu-args.ts';
import type { LoadedModule } from './test-plan.ts';
import { fileSafe } from './test-plan.ts';
import type { GdbAsk, SuiteRunInput } from './types.ts';

/** The run's --gdb, if any, with the kernel's symbols where the run has them (debug/kernel-symbols.ts runSymbols) and the debug kernel's tree (its gdb helpers). */
export const gdbAsk = (c: Pick<Config, 'gdb' | 'gdbBatch' | 'gdbBeforeLoad' | 'debugKernel' | 'kernelBuildDir'>, vmlinux?: string): GdbAsk | undefined =>
  c.gdb
    ? { test: c.gdb, batch: c.gdbBatch || undefined, kernelTree: c.debugKernel ? c.kernelBuildDir : undefined, vmlinux, beforeLoad: c.gdbBeforeLoad }
    : undefined;

/** gdb attached, and how to wait for its end. */
export interface GdbRun {
  /** The test's command runs this long at most while gdb is attached: a gdb at a terminal holds the guest as long as its user likes. */
  appTimeoutS?: number;
  finish: () => Promise<CheckResult>;
}

/** --gdb's bad input, before anything boots: a test the suite does not have or this run does not take, or a terminal gdb without a terminal. */
export function checkGdbAsk(
  gdb: string,
  batch: string,
  tests: readonly { name: string }[],
  selected: readonly { name: string }[],
  isTTY: boolean,
  o: { beforeLoad?: boolean; loadOnce?: boolean } = {},
): void {
  if (!gdb && batch)
    throw new KmodvmError('usage', '--batch goes with --gdb TEST: the script runs when that test has loaded its modules', { hint: 'add --gdb TEST' });
  if (!gdb && o.beforeLoad) throw new KmodvmError('usage', '--gdb-before-load goes with --gdb TEST', { hint: 'add --gdb TEST' });
  if (!gdb) return;
  if (o.beforeLoad && o.loadOnce)
    throw new KmodvmError('usage', '--gdb-before-load: this suite loads its modules once, before its first test (load: once)', {
      hint: 'use load: per-test in the suite, or --gdb without --gdb-before-load',
    });
  const names = tests.map((t) => t.name);
  if (!names.includes(gdb)) throw new KmodvmError('usage', `--gdb ${gdb}: the suite has no such test`, { hint: `the tests are: ${names.join(', ')}` });
  if (!selected.some((t) => t.name === gdb))
    throw new KmodvmError('usage', `--gdb ${gdb}: this run does not take that test (--only, --shard)`, { hint: `add --only ${gdb}` });
  if (batch && !statSync(batch, { throwIfNoEntry: false })?.isFile())
    throw new KmodvmError('usage', `--batch ${batch}: not a file`, { hint: 'give the gdb script gdb should run (docs/debugging.md)' });
  if (!batch && !isTTY)
    throw new KmodvmError('usage', '--gdb without --batch needs a terminal, and this run has none', {
      hint: 'give gdb a script to run: --batch FILE (docs/debugging.md)',
    });
}

/** Whether this run of a test is the one --gdb named (every run of it under --repeat: name#k). */
export const gdbWanted = (asked: string, name: string): boolean => name === asked || name.replace(/#\d+$/, '') === asked;

/** How long a batch gdb may run on after the test's command is done. */
const BATCH_GRACE_MS = 5000;

const inTreeOf = (tree: string | undefined, f: string): string | undefined => (tree && existsSync(path.join(tree, f)) ? path.join(tree, f) : undefined);

/** The modules' symbols at their addresses; before their load (--gdb-before-load), only their .ko files, which needs the kernel's symbols. */
async function gdbModules(ask: GdbAsk, guest: Guest, modules: readonly LoadedModule[], dir: string, timeoutMs: number) {
  const mods = modules.map((m) => ({ name: m.name, guestKo: m.guestKo, hostKo: m.host?.ko }));
  if (!ask.beforeLoad) return { syms: await moduleSymbols(guest.session, mods, dir, timeoutMs), onLoad: undefined };
  // Before the loads the modules have no addresses yet: their symbols go in as each one's init is called (gdb-script.ts onLoadScript), which needs the kernel's.
  if (!(ask.vmlinux ?? inTreeOf(ask.kernelTree, 'vmlinux')))
    throw new KmodvmError('usage', "--gdb-before-load needs the kernel's symbols, to stop where the kernel calls a module's init", {
      hint: "add --kernel-symbols (Debian's -dbg of the stock kernel, fetched once), or use --kernel debian-12-debug",
    });
  return { syms: [], onLoad: await Promise.all(mods.map((m) => moduleFile(guest.session, m, dir, timeoutMs))) };
}

/** Attaches gdb to the guest with the loaded modules' symbols; returns once gdb has them (or has ended). */
export async function attachGdb(
  i: Pick<SuiteRunInput, 'c' | 'suite' | 'runDir' | 'log'>,
  ask: GdbAsk,
  guest: Guest,
  testName: string,
  modules: readonly LoadedModule[],
): Promise<GdbRun> {
  const t0 = Date.now();
  await preflight(i.log, [GDB_REQUIREMENT]);
  const dir = path.join(i.runDir, 'tests', fileSafe(testName), 'gdb');
  const timeoutMs = i.c.timeouts.command * 1000;
  await mkdir(dir, { recursive: true, mode: 0o700 });
  const { syms, onLoad } = await gdbModules(ask, guest, modules, dir, timeoutMs);
  const trees = [...new Set(modules.flatMap((m) => (m.host ? [m.host.tree] : [])))];
  const inTree = (f: string): string | undefined => inTreeOf(ask.kernelTree, f);
  const vmlinux = ask.vmlinux ?? inTree('vmlinux');
  const offset = vmlinux ? kaslrOffset((await guest.session.exec(KERNEL_TEXT_COMMAND, { timeoutMs })).stdout) : 0n;
  const batch = Boolean(ask.batch);
  const release = batch ? () => {} : holdSigint();
  if (!batch)
    i.log(
      `gdb: attached to the guest for test ${testName}${ask.beforeLoad ? ', before its modules load' : ''}; the test goes on when gdb continues, and its modules unload when gdb quits`,
    );
  const g = await startGdb({
    socket: gdbSocketOf(guest.qmpSocket!),
    qmpSocket: guest.qmpSocket!,
    dir,
    plan: {
      modules: syms,
      onLoad,
      substitute: trees.map((t) => [t, i.suite.root] as const),
      vmlinux: vmlinux ? { file: vmlinux, offset } : undefined,
      helpers: inTree('vmlinux-gdb.py'),
      user: ask.batch,
      batch,
    },
    readable: [
      ...syms.map((s) => path.dirname(s.ko)),
      i.suite.root,
      ...trees,
      ...(ask.batch ? [ask.batch] : []),
      ...(ask.kernelTree ? [ask.kernelTree] : []),
      ...(vmlinux ? [path.dirname(vmlinux)] : []),
    ],
    // Batch: the script's own deadline is the test's; at a terminal, a day.
    timeoutMs: batch ? (i.c.timeouts.app + 60) * 1000 : 86_400_000,
  });
  const attached = await g.attached;
  return {
    appTimeoutS: batch ? undefined : 86_400,
    finish: () => gdbStep(g, { attached, batch, release, t0, log: path.relative(i.runDir, path.join(dir, 'gdb.log')) }),
  };
}

/** gdb's end as the test's `gdb` step: a batch script that ends waiting (a last `continue`) is ended once the test's command is done and gdb had its grace. */
async function gdbStep(
  g: Awaited<ReturnType<typeof startGdb>>,
  o: { attached: boolean; batch: boolean; release: () => void; t0: number; log: string },
): Promise<CheckResult> {
  if (o.batch && !(await settlesWithin(g.done, BATCH_GRACE_MS))) g.end();
  const r = await g.done.finally(o.release);
  const out = `${r.stdout}\n${r.stderr}`.trim();
  const ok = o.attached && (r.exitCode === 0 || r.ended === true);
  return {
    name: 'gdb',
    ok,
    failure: ok ? undefined : 'usage',
    durationMs: Date.now() - o.t0,
    message: `${o.attached ? 'attached' : 'did not attach'}; gdb ${r.ended ? `still ran ${BATCH_GRACE_MS / 1000} s after the test's command was done, so kmodvm ended it` : r.reason}${o.batch ? `; its output in ${o.log}` : ''}`,
    evidence: o.batch ? tail(out, 40) : undefined,
  };
}
