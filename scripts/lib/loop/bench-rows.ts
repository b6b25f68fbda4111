// The bench's rows, one function per figure, each measured as users run it
// (the compiled CLI) and in this one run. The runner is cli/commands/bench.ts;
// the pure parts (medians, ratios, the table) are bench.ts.

import { existsSync } from 'node:fs';
import { appendFile, cp, mkdtemp, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { runSandboxed } from '../build/sandbox.ts';
import type { Config } from '../core/config.ts';
import { run } from '../core/proc.ts';
import { waitUntil } from '../core/wait.ts';
import type { ImageInfo } from '../image/image.ts';
import { genericInitrd } from '../image/initrd.ts';
import { accelArgs, baseArgs, consoleArgs, firmwareArgs, kernelArgs, QBOOT, sizeArgs } from '../vm/qemu-args.ts';
import { QEMU } from '../vm/vm.ts';
import { benchSuite } from './bench-suite.ts';
import type { BenchRow } from './bench-table.ts';
import { bootVm } from './boot.ts';

export interface Bench {
  c: Config;
  img: ImageInfo;
  accel: 'kvm' | 'tcg';
  out: string;
  runs: number;
  want: (key: string) => boolean;
  row: (key: string, label: string) => BenchRow;
  log: (l: string) => void;
}

/** A command of the compiled CLI (bin/kmodvm.js), as npm run and npx start it. */
export const cli = (b: Bench, command: string, args: string[], o: { timeout?: number; all?: boolean } = {}) =>
  execa(process.execPath, [path.join(b.c.root, 'bin/kmodvm.js'), command, ...args], { reject: false, cwd: b.c.root, ...o });

/** floor: the same kernel, a busybox initramfs whose init powers off at once. */
export async function benchFloor(b: Bench): Promise<void> {
  const { c, img, accel, runs, row, log } = b;
  if (b.want('floor')) {
    const floorDir = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-floor-'));
    await genericInitrd({
      leanInitrd: img.initrdLean,
      initScript: '#!/bin/busybox sh\n/bin/busybox poweroff -f\n',
      work: path.join(floorDir, 'tree'),
      out: path.join(floorDir, 'floor.cpio'),
    });
    const floor = row('floor', 'floor: kernel + busybox initramfs that powers off (QEMU wall)');
    const floorArgs = [
      ...baseArgs(),
      ...accelArgs(accel),
      ...sizeArgs(c),
      ...firmwareArgs({ bios: existsSync(QBOOT) ? QBOOT : undefined }),
      ...kernelArgs({ kernel: img.vmlinux, initrd: path.join(floorDir, 'floor.cpio'), cmdline: img.cmdline }),
      ...consoleArgs({ serialLog: path.join(floorDir, 'serial.log'), qmpSocket: path.join(floorDir, 'qmp.sock') }),
    ];
    for (let i = 0; i < runs; i++) {
      const r = await run(QEMU, floorArgs, { timeoutMs: 120_000 });
      if (r.exitCode === 0) floor.samples.push(r.durationMs / 1000);
    }
    log(`floor: ${floor.samples.map((x) => x.toFixed(2)).join(' ')}`);
  }
}

/** The boot itself, and the resume from the saved guest. */
export async function benchBoot(b: Bench): Promise<void> {
  const { c, img, accel, runs, row, log, want } = b;
  // The boot itself: --no-resume, so every sample boots the guest.
  const boot = row('boot_to_ssh', 'boot to SSH, default profile, booted (`--no-resume`)');
  for (let i = 0; i < runs && want('boot_to_ssh'); i++) {
    const d = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-boot-'));
    const b = await bootVm({ ...c, resume: false }, img, accel, d, () => undefined);
    boot.samples.push(b.bootMs / 1000);
    b.session.close();
    await b.vm.kill();
  }
  log(`boot to SSH: ${boot.samples.map((x) => x.toFixed(2)).join(' ')}`);

  // What vm:test does once the image's guest has been saved: resume it (snapshot.ts).
  // A first call saves the snapshot when there is none; only resumes are counted.
  const resume = row('resume_to_ssh', 'resume to SSH from the saved guest, default profile (what `vm:test` does after its first run)');
  for (let i = 0; i < runs + 1 && want('resume_to_ssh'); i++) {
    const d = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-resume-'));
    const b = await bootVm(c, img, accel, d, (l) => {
      if (l.startsWith('snapshot:')) log(l);
    });
    if (b.how === 'resumed' && resume.samples.length < runs) resume.samples.push(b.bootMs / 1000);
    else log(`resume to SSH: not counted (${b.how} in ${(b.bootMs / 1000).toFixed(2)} s)`);
    b.session.close();
    await b.vm.kill();
  }
  log(`resume to SSH: ${resume.samples.map((x) => x.toFixed(2)).join(' ')}`);
}

/** Runs of `test args`, each a sample when it exits as expected (0; the planted suite's 13). */
async function timed(b: Bench, r: BenchRow, args: string[], n = b.runs, wanted = b.want(r.key), exit = 0): Promise<void> {
  if (!wanted) return;
  for (let i = 0; i < n; i++) {
    const t0 = Date.now();
    const p = await cli(b, 'test', ['--runs-dir', b.out, ...args], { timeout: 20 * 60_000 });
    if (p.exitCode === exit) r.samples.push((Date.now() - t0) / 1000);
    else b.log(`${r.key}: a run failed (exit ${p.exitCode}); not counted`);
  }
  b.log(`${r.key}: ${r.samples.map((x) => x.toFixed(2)).join(' ')}`);
}

/** Warm vm:test, host and guest builds. */
export async function benchWarm(b: Bench): Promise<void> {
  const { row, want } = b;
  await timed(b, row('warm_vm_test', 'warm `vm:test`, default build mode'), []);
  // The guest build with make: the first guest build of a module shape, which
  // also records kbuild's commands (guest-kbuild.ts); measured once, like the
  // cold image build. The rows after it replay the record.
  const makeRow = row('guest_build_make', 'warm `vm:test --build guest --no-replay` (make in the guest; once)');
  await timed(b, makeRow, ['--build', 'guest', '--no-replay'], 1, want('guest_build_make') || want('warm_vm_test_guest_build'));
  await timed(b, row('warm_vm_test_guest_build', "warm `vm:test --build guest` (kbuild's recorded commands replayed in the guest)"), ['--build', 'guest']);
  await benchCheckers(b);
  await benchDevices(b);
}

/** A driver and its device (#25): warm vm:test of the edu demo's probe test, its edu hot-plugged into the resumed guest (the guest with root ports is saved by a warm-up run). */
async function benchDevices(b: Bench): Promise<void> {
  const key = 'warm_vm_test_edu';
  if (!b.want(key)) return;
  const args = ['--suite', path.join(b.c.root, 'examples/edu/kmodvm.yaml'), '--only', 'probe'];
  const first = await cli(b, 'test', ['--runs-dir', b.out, ...args], { timeout: 20 * 60_000 });
  b.log(`${key}: warm-up run exited ${first.exitCode}`);
  await timed(b, b.row(key, 'warm `vm:test` of examples/edu --only probe (resume, edu hot-plugged, the driver probes it)'), args);
}

/** What the bug detection costs: warm vm:test with --memcheck (its own saved guest), and on the debug kernel (which boots every run). */
async function benchCheckers(b: Bench): Promise<void> {
  const { row, want, log } = b;
  for (const [key, title, args] of [
    ['warm_vm_test_memcheck', 'warm `vm:test --memcheck` (SLUB debugging, slab check, leak check at rmmod)', ['--memcheck']],
    ['warm_vm_test_debug', 'warm `vm:test --kernel debian-12-debug` (the debug kernel, cached; its saved guest resumed)', ['--kernel', 'debian-12-debug']],
  ] as const) {
    if (!want(key)) continue;
    // Not counted: the first run saves the guest (--memcheck's command line is its own) or builds the debug kernel.
    const first = await cli(b, 'test', ['--runs-dir', b.out, ...args], { timeout: 60 * 60_000 });
    log(`${key}: warm-up run exited ${first.exitCode}`);
    await timed(b, row(key, title), [...args]);
  }
  // The planted suite on the debug kernel (#27.4): ten bugs, each caught (exit 13), nine on a fresh guest; once, after the row above warmed the kernel.
  const planted = ['--suite', path.join(b.c.root, 'test/planted-bugs/kmodvm.yaml'), '--kernel', 'debian-12-debug'];
  await timed(
    b,
    row('planted_suite_debug', 'the planted suite on `--kernel debian-12-debug` (ten bugs caught, nine fresh guests; once)'),
    planted,
    1,
    want('planted_suite_debug'),
    13,
  );
}

/** save to verdict: vm:watch on a copy of the sources, one-line changes. */
export async function benchWatch(b: Bench): Promise<void> {
  const { c, runs, row, log, want, out } = b;
  const mod = row('watch_module', 'watch: save to verdict, one-line module change');
  const app = row('watch_app', 'watch: save to verdict, one-line app change');
  if (want('watch_module') || want('watch_app')) {
    const src = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-src-'));
    await cp(path.join(c.root, 'kernel-module'), path.join(src, 'kernel-module'), { recursive: true });
    await cp(path.join(c.root, 'userapp'), path.join(src, 'userapp'), { recursive: true });
    await cp(path.join(c.root, 'kmodvm.yaml'), path.join(src, 'kmodvm.yaml'));
    await cp(path.join(c.root, 'test/expected'), path.join(src, 'test/expected'), { recursive: true });
    const name = `bench-${process.pid}`;
    const w = cli(b, 'watch', ['--name', name, '--suite', path.join(src, 'kmodvm.yaml'), '--runs-dir', out], { all: true });
    let text = '';
    const verdicts = (): number[] => [...text.matchAll(/save to verdict ([\d.]+) s/g)].map((m) => Number(m[1]));
    const waitFor = async (pred: () => boolean, ms: number): Promise<boolean> =>
      (await waitUntil(pred, { deadlineMs: ms, alive: () => w.exitCode === null })).end === 'ready';
    w.all?.on('data', (d: Buffer) => {
      text += d.toString();
    });
    if (await waitFor(() => text.includes('watch: watching'), 10 * 60_000)) {
      for (let i = 0; i < runs; i++) {
        // A one-line change to the code, not a comment: the binary changes, so the rebuild and the upload are real.
        for (const [r, f, line] of [
          [mod, 'kernel-module/netlink_simple_intf.c', `int kmodvm_bench_edit_${i} = ${i};\n`],
          [app, 'userapp/netlink_userapp.c', `int bench_edit_${i} = ${i};\n`],
        ] as const) {
          const n = verdicts().length;
          await appendFile(path.join(src, f), line);
          if (await waitFor(() => verdicts().length > n, 5 * 60_000)) r.samples.push(verdicts()[n]);
        }
      }
    }
    w.kill('SIGINT');
    await w;
    await cli(b, 'down', ['--name', name]);
    log(`watch: module ${mod.samples.join(' ')}; app ${app.samples.join(' ')}`);
  }
}

/** Scale: one suite of 20 small tests on one VM (a module with a parameter, each test a shell line). */
export async function benchScale(b: Bench): Promise<void> {
  const { runs, row, log, want, out } = b;
  const suiteTotal = row('suite_20_total', 'suite of 20 small tests on one VM, warm `vm:test --suite` (total)');
  const perTest = row('suite_per_test', 'suite of 20 small tests: cost per test after the first (mean of tests 2-20)');
  if (want('suite_20_total') || want('suite_per_test')) {
    const dir = await benchSuite(await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-suite-')), 20);
    await cli(b, 'test', ['--runs-dir', out, '--suite', path.join(dir, 'kmodvm.yaml')], { timeout: 20 * 60_000 }); // warms the host build tree's first kbuild
    for (let i = 0; i < runs; i++) {
      const t0 = Date.now();
      const p = await cli(b, 'test', ['--runs-dir', out, '--suite', path.join(dir, 'kmodvm.yaml')], { timeout: 20 * 60_000 });
      const runDir = /run directory: (\S+)/.exec(p.stderr)?.[1];
      if (p.exitCode !== 0 || !runDir) {
        log(`suite: a run failed (exit ${p.exitCode}); not counted`);
        continue;
      }
      suiteTotal.samples.push((Date.now() - t0) / 1000);
      const report = JSON.parse(await readFile(path.join(runDir, 'report.json'), 'utf8')) as { tests: { durationMs: number }[] };
      const later = report.tests.slice(1).map((t) => t.durationMs / 1000);
      perTest.samples.push(later.reduce((a, b) => a + b, 0) / later.length);
    }
    log(`suite: total ${suiteTotal.samples.map((x) => x.toFixed(2)).join(' ')}; per test ${perTest.samples.map((x) => x.toFixed(3)).join(' ')}`);
  }
}

/** classic is the stock way: systemd, the stock initrd, the compressed kernel, and make in the guest. */
export async function benchClassic(b: Bench): Promise<void> {
  await timed(
    b,
    b.row('classic', 'classic: `vm:test --profile systemd --build guest --no-replay` (systemd, stock initrd, compressed kernel, make in the guest)'),
    ['--profile', 'systemd', '--build', 'guest', '--no-replay'],
  );
}

/**
 * The build sandbox's cost per process (bwrap, its own root, the seccomp
 * filter): 20 sandboxed `true`s against 20 plain ones, each a sample. A
 * watch cycle's host build starts about five (make or the replay's
 * commands, and strip).
 */
export async function benchSandbox(b: Bench): Promise<void> {
  if (!b.want('sandbox_20') && !b.want('plain_20')) return;
  const sandboxed = b.row('sandbox_20', '20 processes in the build sandbox (bwrap, own root, seccomp)');
  const plain = b.row('plain_20', '20 plain processes');
  const writable = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-sandbox-'));
  for (let i = 0; i < b.runs; i++) {
    let t = performance.now();
    for (let j = 0; j < 20; j++) await runSandboxed('true', [], { writable: [writable] }, { timeoutMs: 10_000 });
    sandboxed.samples.push((performance.now() - t) / 1000);
    t = performance.now();
    for (let j = 0; j < 20; j++) await run('true', [], { timeoutMs: 10_000 });
    plain.samples.push((performance.now() - t) / 1000);
  }
  b.log(`sandbox: 20 sandboxed ${sandboxed.samples.map((x) => x.toFixed(3)).join(' ')}; 20 plain ${plain.samples.map((x) => x.toFixed(3)).join(' ')}`);
}
