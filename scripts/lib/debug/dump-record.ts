// The pure parts of a crash dump (issue 26.3): the guest's set-up for it,
// what that set-up answered, and dump.json, the record beside the vmcore
// that kmodvm crash opens it with (debug/crash.ts). A run directory from CI
// is opened on another machine: every path in the record is relative to the
// dump's own directory.
import { z } from 'zod';

/**
 * Run in the guest when a run arms the dump: the pvpanic driver (the guest
 * tells QEMU it panicked), qemu_fw_cfg (the kernel writes its vmcoreinfo to
 * QEMU's device), and an oops made a panic, so an oops leaves a dump too.
 * Each line of the answer is key=value. Modules that are built in, or
 * absent, are not an error here: the answer says what the guest has.
 */
export const DUMP_SETUP = [
  'modprobe -q pvpanic_mmio 2>/dev/null',
  'modprobe -q qemu_fw_cfg 2>/dev/null',
  'd=/sys/bus/platform/drivers/pvpanic-mmio',
  '[ -e $d/QEMU0001:00 ] || { [ -e $d/bind ] && echo QEMU0001:00 > $d/bind; } 2>/dev/null',
  '[ -e $d/QEMU0001:00 ] && echo pvpanic=yes || echo pvpanic=no',
  '[ -e /sys/firmware/qemu_fw_cfg/by_name/etc/vmcoreinfo ] && echo vmcoreinfo=yes || echo vmcoreinfo=no',
  'echo 1 > /proc/sys/kernel/panic_on_oops && echo panic_on_oops=yes || echo panic_on_oops=no',
  'echo release=$(uname -r)',
].join('\n');

export interface DumpSetup {
  pvpanic: boolean;
  vmcoreinfo: boolean;
  panicOnOops: boolean;
  release: string;
}

export function parseDumpSetup(stdout: string): DumpSetup {
  const kv = new Map(
    stdout
      .split('\n')
      .map((l) => /^(\w+)=(.*)$/.exec(l.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1], m[2]] as const),
  );
  return {
    pvpanic: kv.get('pvpanic') === 'yes',
    vmcoreinfo: kv.get('vmcoreinfo') === 'yes',
    panicOnOops: kv.get('panic_on_oops') === 'yes',
    release: kv.get('release') ?? '',
  };
}

/** Why a guest cannot give a dump, or undefined when it can. */
export function setupProblem(s: DumpSetup): string | undefined {
  if (!s.pvpanic)
    return `the guest kernel ${s.release || '(unknown)'} has no pvpanic driver bound to QEMU's pvpanic device, so QEMU cannot tell when it panics (CONFIG_PVPANIC_MMIO)`;
  if (!s.panicOnOops) return 'the guest refused kernel.panic_on_oops=1';
  return undefined;
}

export const DUMP_FORMAT = 'kmodvm-dump/1';

export const dumpRecordSchema = z.strictObject({
  format: z.literal(DUMP_FORMAT),
  /** The test under way when the guest panicked. */
  test: z.string(),
  at: z.string(),
  /** uname -r of the guest. */
  release: z.string(),
  /** The debug kernel's vmlinux where the run booted one (an absolute path on the machine that ran it). */
  vmlinux: z.string().optional(),
  /** The stock kernel's Debian package (suite, name, version): its -dbg package has the symbols (debug/kernel-symbols.ts). */
  kernelPackage: z.strictObject({ suite: z.string(), name: z.string(), version: z.string() }).optional(),
  /** The memory, as QEMU wrote it (dump-guest-memory). */
  vmcore: z.string(),
  vmcoreFormat: z.enum(['kdump-zlib', 'elf']),
  bytes: z.number().int().nonnegative(),
  /** The kernel wrote its vmcoreinfo (KASLR offset, struct layouts): crash and drgn find the kernel in the dump by it. */
  vmcoreinfo: z.boolean(),
  /** The first splat on the console: the panic's backtrace as the kernel printed it. */
  panic: z.string(),
  /** The suite's modules, their .ko copied beside the dump (relative). */
  modules: z.array(z.strictObject({ name: z.string(), ko: z.string() })),
});

export type DumpRecord = z.infer<typeof dumpRecordSchema>;

/** The directory of the n-th dump of a run (1-based): dump, dump-2, dump-3 … */
export const dumpDirName = (n: number): string => (n === 1 ? 'dump' : `dump-${n}`);

const MIB = 1024 * 1024;

/** The dump step's one line: where the memory is, and the command that opens it. */
export function dumpMessage(r: Pick<DumpRecord, 'bytes' | 'vmcoreFormat'>, rel: string, open: string): string {
  return `the guest panicked; its memory is in ${rel}/vmcore (${(r.bytes / MIB).toFixed(0)} MiB, ${r.vmcoreFormat}); open it with: ${open}`;
}
