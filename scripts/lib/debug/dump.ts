// The crash-dump watcher (issue 26.3). Every guest has QEMU's pvpanic and
// vmcoreinfo devices and a second QMP monitor (vm/qemu-args.ts panicArgs).
// With --dump, a run arms each of its guests: the guest loads its pvpanic
// driver and turns an oops into a panic; the watcher takes the second
// monitor for the guest's life and tells QEMU to pause, not end, on a panic.
// When the guest panics, QEMU pauses it and says so (GUEST_PANICKED); the
// watcher writes its memory, compressed, into the run directory
// (dump-guest-memory, kdump-zlib), with dump.json beside it, and then ends
// QEMU, as a panic without --dump does.
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KmodvmError } from '../core/errors.ts';
import { waitUntil } from '../core/wait.ts';
import type { Guest } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import { type CompiledRules, findSplats, formatSplat } from '../verdict/splat.ts';
import { eventsSocketOf } from '../vm/qemu-args.ts';
import { Qmp } from '../vm/qmp.ts';
import { DUMP_FORMAT, DUMP_SETUP, type DumpRecord, dumpDirName, dumpMessage, parseDumpSetup, setupProblem } from './dump-record.ts';
import { moduleFile } from './gdb.ts';

/** Writing a guest's memory: 1 GiB compressed takes seconds; a stuck dump is given up at this. */
const DUMP_MS = 5 * 60_000;

/** A module the dump keeps the .ko of: the host build's (with its debug info), else the one fetched from the guest at arming. */
export interface DumpModule {
  name: string;
  ko: string;
}

export interface ArmOptions {
  guest: Guest;
  runDir: string;
  modules: readonly { name: string; guestKo: string; host?: { ko: string } }[];
  rules: CompiledRules;
  vmlinux?: string;
  kernelPackage?: DumpRecord['kernelPackage'];
  timeoutMs: number;
  /** The command that opens a dump of this run. */
  openCommand: string;
}

export class DumpWatch {
  /** The test under way: the dump names it. */
  test = '';
  private dumping: Promise<CheckResult> | undefined;

  private constructor(
    private readonly q: Qmp,
    private readonly o: ArmOptions,
    private readonly release: string,
    private readonly vmcoreinfo: boolean,
    private readonly modules: readonly DumpModule[],
  ) {
    q.onEvent('GUEST_PANICKED', () => {
      this.dumping ??= this.dump();
    });
  }

  /** Arms the guest (DUMP_SETUP) and its monitor; a guest that cannot give a dump is a setup failure that says why. */
  static async arm(o: ArmOptions): Promise<DumpWatch> {
    const s = parseDumpSetup((await o.guest.session.exec(['sh', '-c', DUMP_SETUP], { timeoutMs: o.timeoutMs })).stdout);
    const problem = setupProblem(s);
    if (problem)
      throw new KmodvmError('setup', `--dump: ${problem}`, {
        hint: "boot a kernel with the pvpanic driver (Debian's has it as a module; --kernel-image with CONFIG_PVPANIC_MMIO), or run without --dump",
      });
    if (!o.guest.qmpSocket) throw new KmodvmError('setup', '--dump: this guest has no QMP socket');
    const q = await Qmp.connect(eventsSocketOf(o.guest.qmpSocket), { deadlineMs: 5000, alive: () => true }).catch((e: Error) => {
      throw new KmodvmError('setup', `--dump: the guest has no crash-dump monitor (${e.message})`, {
        hint: 'the instance was started by an older kmodvm: start it again',
      });
    });
    try {
      await q.execute('set-action', { panic: 'pause' });
      const modules = await keptModules(o);
      return new DumpWatch(q, o, s.release, s.vmcoreinfo, modules);
    } catch (e) {
      q.close();
      throw e;
    }
  }

  /** After a test: the dump step when the guest panicked during it (waiting for the dump to be written), else undefined. */
  async settle(): Promise<CheckResult | undefined> {
    return this.dumping;
  }

  close(): void {
    this.q.close();
  }

  private async dump(): Promise<CheckResult> {
    const t0 = Date.now();
    let n = 1;
    while (existsSync(path.join(this.o.runDir, dumpDirName(n)))) n++;
    const rel = dumpDirName(n);
    const dir = path.join(this.o.runDir, rel);
    try {
      await mkdir(path.join(dir, 'modules'), { recursive: true, mode: 0o700 });
      const vmcore = path.join(dir, 'vmcore');
      await this.q.execute('dump-guest-memory', { paging: false, protocol: `file:${vmcore}`, detach: true, format: 'kdump-zlib' });
      const w = await waitUntil(
        async () => {
          const st = await this.q.execute<{ status: string }>('query-dump');
          return st.status !== 'active' && st.status;
        },
        { deadlineMs: DUMP_MS, intervalMs: 200 },
      );
      if (w.end !== 'ready' || w.value !== 'completed')
        throw new KmodvmError('boot', `QEMU did not write the guest's memory (${w.end === 'ready' ? `dump ${w.value}` : `not done in ${DUMP_MS / 1000} s`})`);
      await chmod(vmcore, 0o600);
      const record = await this.record(dir, vmcore);
      await writeFile(path.join(dir, 'dump.json'), `${JSON.stringify(record, null, 2)}\n`, { mode: 0o600 });
      return {
        name: 'dump',
        ok: true,
        durationMs: Date.now() - t0,
        message: dumpMessage(record, rel, this.o.openCommand),
        evidence: record.panic || undefined,
      };
    } catch (e) {
      if (!(e instanceof Error)) throw e;
      return {
        name: 'dump',
        ok: false,
        failure: 'boot',
        durationMs: Date.now() - t0,
        message: `--dump: the guest panicked, but ${e.message}`,
        evidence: `in ${dir}`,
      };
    } finally {
      // The panicked guest is over, as it would be without --dump.
      await this.q.execute('quit').catch(() => undefined);
      this.q.close();
    }
  }

  private async record(dir: string, vmcore: string): Promise<DumpRecord> {
    const modules: DumpRecord['modules'] = [];
    for (const m of this.modules) {
      const ko = path.join('modules', `${m.name}.ko`);
      await copyFile(m.ko, path.join(dir, ko));
      modules.push({ name: m.name, ko });
    }
    const serial = await readFile(this.o.guest.serialLog, 'utf8').catch(() => '');
    const splat = findSplats(serial, this.o.rules, 'serial.log', { maxExcerpt: 100 })[0];
    return {
      format: DUMP_FORMAT,
      test: this.test,
      at: new Date().toISOString(),
      release: this.release,
      vmlinux: this.o.vmlinux,
      kernelPackage: this.o.kernelPackage,
      vmcore: path.basename(vmcore),
      vmcoreFormat: 'kdump-zlib',
      bytes: (await stat(vmcore)).size,
      vmcoreinfo: this.vmcoreinfo,
      panic: splat ? formatSplat(splat) : '',
      modules,
    };
  }
}

/** The modules' .ko: the host build's where there is one, else fetched from the guest now (a panicked guest gives nothing). */
async function keptModules(o: ArmOptions): Promise<DumpModule[]> {
  const dir = path.join(o.runDir, 'guest-ko');
  return Promise.all(o.modules.map((m) => moduleFile(o.guest.session, { name: m.name, guestKo: m.guestKo, hostKo: m.host?.ko }, dir, o.timeoutMs)));
}
