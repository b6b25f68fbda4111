// kmodvm crash RUNDIR (issue 26.3): a dump that --dump wrote, opened in
// Debian's crash with the kernel's symbols and the modules' .ko, after the
// panic as the console showed it. crash reads what the guest's memory holds
// and what the user built: it runs in the build sandbox, never unconfined,
// with -s and --no_crashrc (no .crashrc of anyone's is read). In batch mode
// (--batch FILE, for CI and tests) its output is also kept in the dump's
// crash.log.
import { existsSync, lstatSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runSandboxed } from '../build/sandbox.ts';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { assertInside } from '../core/tree-fs.ts';
import { preflight, type Requirement } from '../host/preflight.ts';
import { type DumpRecord, dumpRecordSchema } from './dump-record.ts';
import { requireSandbox } from './gdb.ts';
import { cachedSymbols, dbgPackageOf, ensureSymbols, SYMBOLS_COST } from './kernel-symbols.ts';

export const CRASH_REQUIREMENT: Requirement = { probe: 'crash', pkg: 'crash', why: 'opens crash dumps (kmodvm crash)' };

/** The dump a path names: a dump directory itself, or a run directory's first dump. Bad input is a usage error that says what is there. */
export async function readDump(target: string): Promise<{ dir: string; record: DumpRecord }> {
  const dir = existsSync(path.join(target, 'dump.json')) ? target : path.join(target, 'dump');
  const file = path.join(dir, 'dump.json');
  if (!existsSync(file)) {
    const run = existsSync(path.join(target, 'report.json'));
    throw new KmodvmError(
      'usage',
      `kmodvm crash: ${target} has no dump${run ? ': no guest panicked in that run, or it ran without --dump' : ' and is not a run directory'}`,
      {
        hint: `run the tests with --dump (${kmodvmCommand('test', '--dump')}); a panic or an oops then leaves RUNDIR/dump`,
      },
    );
  }
  const parsed = dumpRecordSchema.safeParse(JSON.parse(await readFile(file, 'utf8')));
  if (!parsed.success) {
    const i = parsed.error.issues[0];
    throw new KmodvmError('usage', `kmodvm crash: ${file}: field \`${i.path.join('.')}\` ${i.message}`, {
      hint: 'the dump was written by another kmodvm, or changed',
    });
  }
  // A run directory may come from another machine: what it names is a regular file inside it, or nothing kmodvm opens.
  for (const f of [parsed.data.vmcore, ...parsed.data.modules.map((m) => m.ko)]) {
    if (path.isAbsolute(f) || f.split(/[\\/]/).includes('..')) throw new KmodvmError('usage', `kmodvm crash: ${file} names ${f}, outside its directory`);
    if (!lstatSync(path.join(dir, f), { throwIfNoEntry: false })?.isFile())
      throw new KmodvmError('usage', `kmodvm crash: ${path.join(dir, f)} is not a regular file (missing, or a link)`, {
        hint: 'the dump directory is not as kmodvm wrote it',
      });
  }
  return { dir, record: parsed.data };
}

/** crash's first commands: each module's symbols (crash finds where it is in the dump), the panic's backtrace; then the user's script, or the terminal. */
export function crashScript(record: Pick<DumpRecord, 'modules'>, dir: string, user?: string): string {
  const mods = record.modules.map((m) => `mod -s ${m.name} ${path.join(dir, m.ko)}`);
  return [...mods, 'bt', ...(user === undefined ? [] : [user.trimEnd(), 'quit']), ''].join('\n');
}

export const crashArgs = (script: string, vmlinux: string, vmcore: string): string[] => ['-s', '--no_crashrc', '-i', script, vmlinux, vmcore];

/** f is a regular file under <cache>/kernels/, reached through no link. */
async function ownKernelFile(cacheDir: string, f: string): Promise<boolean> {
  const ok = await assertInside(path.join(cacheDir, 'kernels'), f).then(
    () => true,
    () => false,
  );
  return ok && Boolean(lstatSync(f, { throwIfNoEntry: false })?.isFile());
}

/** The vmlinux with the kernel's debug info: the run's own (debug kernel, your own kernel's tree), else Debian's -dbg (cached, or fetched with --kernel-symbols). */
export async function vmlinuxFor(
  c: Pick<Config, 'cacheDir' | 'mirror' | 'verbose' | 'kernelSymbols'>,
  r: DumpRecord,
  log: (l: string) => void,
): Promise<string> {
  // The run's own vmlinux only where kmodvm keeps kernels (the debug kernel's): a path a downloaded dump.json names is not followed.
  if (r.vmlinux && (await ownKernelFile(c.cacheDir, r.vmlinux))) return r.vmlinux;
  const k = r.kernelPackage;
  if (k) {
    const have = cachedSymbols(c.cacheDir, k);
    if (have) return have;
    if (c.kernelSymbols) return ensureSymbols(c, k, log);
  }
  throw new KmodvmError('usage', `kmodvm crash: no symbols for the guest kernel ${r.release}: crash needs its vmlinux with debug info`, {
    hint: k
      ? `fetch Debian's ${dbgPackageOf(k)} once (${SYMBOLS_COST}): add --kernel-symbols`
      : r.vmlinux
        ? `the run's vmlinux ${r.vmlinux} is not a kernel in this machine's cache (${path.join(c.cacheDir, 'kernels')}): open the dump where it ran`
        : 'this kernel has no known symbols: boot a kernel of your own whose tree has vmlinux (--kernel-image, --kernel-build-dir)',
  });
}

/** Opens the dump; resolves with crash's exit code. */
export async function openCrash(
  c: Pick<Config, 'cacheDir' | 'mirror' | 'verbose' | 'kernelSymbols' | 'gdbBatch'>,
  target: string,
  log: (l: string) => void,
): Promise<number> {
  const { dir, record } = await readDump(target);
  if (c.gdbBatch && !statSync(c.gdbBatch, { throwIfNoEntry: false })?.isFile())
    throw new KmodvmError('usage', `--batch ${c.gdbBatch}: not a file`, { hint: 'give a file of crash commands, one a line' });
  if (!c.gdbBatch && !process.stdin.isTTY)
    throw new KmodvmError('usage', 'kmodvm crash needs a terminal, or --batch FILE with crash commands', { hint: 'add --batch FILE (CI, scripts)' });
  log(`dump: ${path.join(dir, record.vmcore)} of test ${record.test}, kernel ${record.release}, ${record.at}`);
  if (record.panic) log(`the panic, as the console showed it:\n${record.panic}`);
  if (!record.vmcoreinfo) log('note: the guest wrote no vmcoreinfo (no qemu_fw_cfg driver); crash may not find the kernel in the dump');
  const vmlinux = await vmlinuxFor(c, record, log);
  await preflight(log, [CRASH_REQUIREMENT]);
  requireSandbox('crash');
  const user = c.gdbBatch ? await readFile(c.gdbBatch, 'utf8') : undefined;
  const script = path.join(dir, 'kmodvm.crash');
  await writeFile(script, crashScript(record, dir, user), { mode: 0o600 });
  const batch = user !== undefined;
  // crash reads the dump and the symbols; it writes only its scratch directory.
  const scratch = path.join(dir, '.crash');
  await mkdir(scratch, { recursive: true, mode: 0o700 });
  const r = await runSandboxed(
    'crash',
    crashArgs(script, vmlinux, path.join(dir, record.vmcore)),
    { writable: [scratch], readable: [dir, path.dirname(vmlinux)], cwd: scratch, newSession: batch },
    { timeoutMs: batch ? 10 * 60_000 : 86_400_000, terminal: !batch, input: batch ? '' : undefined },
  );
  if (batch) {
    await writeFile(path.join(dir, 'crash.log'), `${r.stdout}${r.stderr ? `\n--- stderr\n${r.stderr}` : ''}`);
    process.stdout.write(r.stdout);
    if (r.stderr.trim()) process.stderr.write(r.stderr);
  }
  if (r.exitCode !== 0 && /no debugging data available/.test(`${r.stdout}${r.stderr}`))
    throw new KmodvmError('setup', `crash cannot read the kernel's debug info in ${vmlinux}`, {
      hint: "the debug kernel is built with reduced debug info (CONFIG_DEBUG_INFO_REDUCED, for a fast build), and crash needs it whole: run the failing test on the stock kernel, with --dump and --kernel-symbols; gdb reads the debug kernel's as it is",
    });
  if (r.exitCode !== 0 && batch) log(`crash ${r.reason}; its output is in ${path.join(dir, 'crash.log')}`);
  return r.exitCode ?? 1;
}
