// The guest commands of one suite test, as data. The user's run: line goes
// to the guest's `sh -c` as it is; around it the tool only reads state:
// before, the taint flags and the kernel log so far (read and cleared, so
// the log after holds exactly this test's lines); after, the command's PID,
// the taint flags and the test's kernel log.
import type { Timeouts } from '../core/config.ts';
import type { StepSpec } from '../guest/steps.ts';
import { GUEST_WORK } from '../guest/steps.ts';

export interface LoadedModule {
  name: string;
  /** The .ko in the guest (absolute). */
  guestKo: string;
  /** The module dir's insmod parameters. */
  params: string[];
  /** A kunit: dir's module: loaded only in that dir's test. */
  kunit?: string;
  /** The .ko on the host, with its debug info (a host build); its tree, where its sources were built. */
  host?: { ko: string; tree: string; kdir?: string };
}

const PID_FILE = '/tmp/kmodvm-run.pid';

/** A name as a file name in the run directory (tests/<name>/, steps/NN-<name>.*). */
export const fileSafe = (s: string): string => s.replace(/[^\w.@+-]+/g, '-');
// Shell builtins where they do (every program started costs ~40 ms under TCG),
// but cat for the taint: a sysctl file answers only a read at offset 0, and
// sh's read builtin reads a byte at a time.
const READ_TAINT = 'cat /proc/sys/kernel/tainted';
const s = (n: number): number => Math.round(n * 1000);

/** Before a test: forget the last PID, print the taint flags, then the kernel log so far, clearing it. */
export const stateBefore = (t: Timeouts): StepSpec => ({
  name: 'state-before',
  argv: ['sh', '-c', `: > ${PID_FILE}; ${READ_TAINT}; dmesg -c`],
  timeoutMs: s(t.command),
  failure: 'internal',
});

/** After a test: the PID the command ran as (then forgotten), the taint flags, the test's kernel log (cleared). It is also the next test's state before. */

/** After the test: the checks' own shell first (their afterTest), then the pid, the taint and the kernel log. */
export const stateAfter = (t: Timeouts, checksFirst: readonly string[] = []): StepSpec => ({
  name: 'state-after',
  argv: ['sh', '-c', `${checksFirst.map((s) => `${s}; `).join('')}p=; read -r p < ${PID_FILE}; : > ${PID_FILE}; echo "$p"; ${READ_TAINT}; dmesg -c`],
  timeoutMs: s(t.command),
  failure: 'internal',
});

export interface StateAfter {
  pid?: string;
  taint?: number;
  dmesg: string;
}

export function parseStateBefore(stdout: string): { taint?: number; dmesg: string } {
  const nl = stdout.indexOf('\n');
  const first = nl < 0 ? stdout : stdout.slice(0, nl);
  return { taint: /^\d+$/.test(first.trim()) ? Number(first.trim()) : undefined, dmesg: nl < 0 ? '' : stdout.slice(nl + 1) };
}

export function parseStateAfter(stdout: string): StateAfter {
  const nl = stdout.indexOf('\n');
  const pid = stdout.slice(0, Math.max(nl, 0)).trim();
  const rest = parseStateBefore(nl < 0 ? '' : stdout.slice(nl + 1));
  return { pid: /^\d+$/.test(pid) ? pid : undefined, ...rest };
}

/** debugfs, where SLUB's allocation traces and failslab live; the lean guest does not mount it. */
const DEBUGFS = 'mountpoint -q /sys/kernel/debug || mount -t debugfs debugfs /sys/kernel/debug';
/** alloc_traces lines whose site is a bare address: code the kernel can no longer name. */
const UNNAMED_SITES = "'^ *[0-9][0-9]* 0x'";

/** --memcheck, before rmmod: where the module's text sections are (the leak check's ranges), and its core from /proc/modules. */
export const moduleLayoutStep = (m: LoadedModule, t: Timeouts): StepSpec => ({
  name: `layout ${m.name}`,
  argv: ['sh', '-c', 'grep -H . /sys/module/"$1"/sections/.*text* 2>/dev/null; grep "^$1 " /proc/modules; true', 'sh', m.name],
  timeoutMs: s(t.command),
  failure: 'internal',
});

/** --memcheck, after the last rmmod: the allocation sites of live objects that the kernel can no longer name (an unloaded module's). */
export const leakScanStep = (t: Timeouts): StepSpec => ({
  name: 'leak-scan',
  argv: ['sh', '-c', `${DEBUGFS}; grep -H ${UNNAMED_SITES} /sys/kernel/debug/slab/*/alloc_traces; true`],
  timeoutMs: s(t.command),
  failure: 'internal',
});

/**
 * The allocation sites of some caches again, after shrinking them: a KASAN
 * kernel keeps freed objects in a quarantine, where SLUB still counts them,
 * and shrinking a cache empties its share of it. A leak found in the first
 * scan is only one if it is still there.
 */
export const confirmTracesStep = (caches: readonly string[], t: Timeouts): StepSpec => ({
  name: 'leak-confirm',
  argv: [
    'sh',
    '-c',
    `for c; do echo 1 > "/sys/kernel/slab/$c/shrink"; done 2>/dev/null; for c; do grep -H ${UNNAMED_SITES} "/sys/kernel/debug/slab/$c/alloc_traces"; done; true`,
    'sh',
    ...caches,
  ],
  timeoutMs: s(t.command),
  failure: 'internal',
});

/** Lines of our own (a leak found at rmmod) into the guest's kernel log, where the test's log and the splat rules read them. */
export const kmsgStep = (lines: readonly string[], t: Timeouts): StepSpec => ({
  name: 'kmsg',
  argv: ['sh', '-c', 'for l; do printf "%s\\n" "$l" > /dev/kmsg; done', 'sh', ...lines],
  timeoutMs: s(t.command),
  failure: 'internal',
});

/** --fail-nth: the guest's helper, built from its source (qemu/guest-tools/kmodvm-fail-nth.c), and failslab told to count GFP_KERNEL allocations. */
export const failNthToolStep = (source: string, t: Timeouts): StepSpec => ({
  name: 'fail-nth-tool',
  argv: [
    'sh',
    '-c',
    [
      DEBUGFS,
      'test -e /proc/thread-self/fail-nth || { echo "this kernel has no fault injection (CONFIG_FAULT_INJECTION, CONFIG_FAILSLAB): run with --kernel debian-12-debug" >&2; exit 3; }',
      'echo N > /sys/kernel/debug/failslab/ignore-gfp-wait',
      'echo 2 > /sys/kernel/debug/failslab/verbose',
      'printf "%s" "$1" > /tmp/kmodvm-fail-nth.c',
      'gcc -O2 -o /tmp/kmodvm-fail-nth /tmp/kmodvm-fail-nth.c',
      'dmesg -c > /dev/null',
    ].join(' && '),
    'sh',
    source,
  ],
  timeoutMs: s(t.build),
  failure: 'internal',
});

/** --fail-nth: one N: the load with its N-th allocation failed, rmmod when it loaded, the unnamed allocation sites, the kernel log. */
export const failNthStep = (m: LoadedModule, n: number, params: readonly string[], t: Timeouts, marks: { traces: string; dmesg: string }): StepSpec => ({
  name: `fail-nth ${m.name} N=${n}`,
  argv: [
    'sh',
    '-c',
    `n=$1 ko=$2 m=$3; shift 3; /tmp/kmodvm-fail-nth "$n" "$ko" "$@"; if [ $? = 0 ]; then rmmod "$m" || echo "kmodvm: rmmod $m failed"; fi; echo ${marks.traces}; grep -H ${UNNAMED_SITES} /sys/kernel/debug/slab/*/alloc_traces; echo ${marks.dmesg}; dmesg -c; true`,
    'sh',
    String(n),
    m.guestKo,
    m.name,
    ...params.map(kernelParam),
  ],
  timeoutMs: s(t.load),
  failure: 'load',
});

/**
 * One parameter as the kernel's parser reads it (kernel/params.c next_arg):
 * insmod and modprobe join their arguments with spaces, so a value with a
 * space is quoted, `name="a b"`, or the kernel reads two parameters (#29.6).
 */
export function kernelParam(p: string): string {
  if (!/\s/.test(p)) return p;
  const eq = p.indexOf('=');
  if (eq < 0 || p[eq + 1] === '"') return p;
  return `${p.slice(0, eq)}="${p.slice(eq + 1)}"`;
}

export const insmodStep = (m: LoadedModule, params: readonly string[], t: Timeouts): StepSpec => ({
  name: `insmod ${m.name}`,
  argv: ['insmod', m.guestKo, ...params.map(kernelParam)],
  timeoutMs: s(t.load),
  failure: 'load',
  marked: true,
});

export const rmmodStep = (m: LoadedModule, t: Timeouts): StepSpec => ({
  name: `rmmod ${m.name}`,
  argv: ['rmmod', m.name],
  timeoutMs: s(t.load),
  failure: 'load',
  marked: true,
});

/**
 * The test's command: `sh -c RUN` from the suite root. The outer shell
 * writes its PID and execs it, and sh execs a single command in turn, so the
 * PID written is the command's own (the {{pid}} of --update).
 */
export const runStepSpec = (run: string, timeoutS: number): StepSpec => ({
  name: 'run',
  argv: ['sh', '-c', `printf %s "$$" > ${PID_FILE}; exec sh -c "$1"`, 'sh', run],
  cwd: GUEST_WORK,
  timeoutMs: s(timeoutS),
  failure: 'app',
  untrusted: true,
});

/** A setup command line, from the suite root. */
export const setupStep = (line: string, i: number, t: Timeouts): StepSpec => ({
  name: `setup[${i}]`,
  argv: ['sh', '-c', line],
  cwd: GUEST_WORK,
  timeoutMs: s(t.build),
  // The suite's own preparation, not a test's command (#29.18): its own class and exit code.
  failure: 'suite-setup',
  untrusted: true,
});

/** The parameters a module gets in a test: the test's own for it, else its dir's. */
export const paramsFor = (m: LoadedModule, testParams: Record<string, string[]> | undefined): string[] => testParams?.[m.name] ?? m.params;
