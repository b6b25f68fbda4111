// npm run bench [-- --runs N]: medians over N runs of every figure, measured
// in this one run; writes bench.md and bench.json into runs/bench-<time>/.
import { appendFile, cp, mkdir, mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import { chooseAccel, hostFacts } from './lib/host/accel.ts';
import { markdownTable, summarize, type BenchRow } from './lib/loop/bench.ts';
import { log, main } from './lib/cli/cli.ts';
import { helpFor, parseCommand } from './lib/cli/commands.ts';
import { KmodvmError } from './lib/core/errors.ts';
import { ensureImage } from './lib/image/build.ts';
import { genericInitrd } from './lib/image/initrd.ts';
import { run } from './lib/core/proc.ts';
import { existsSync } from 'node:fs';
import { accelArgs, baseArgs, consoleArgs, firmwareArgs, kernelArgs, QBOOT, sizeArgs } from './lib/vm/qemu-args.ts';
import { bootVm } from './lib/loop/pipeline.ts';
import { benchSuite } from './lib/loop/bench-suite.ts';
import { benchCli } from './lib/loop/bench-cli.ts';
import { QEMU } from './lib/vm/vm.ts';
import { waitUntil } from './lib/core/wait.ts';

await main(async () => {
  const { config: c, own, help } = parseCommand('bench', process.argv.slice(2));
  if (help) {
    process.stdout.write(`${helpFor('bench')}\n`);
    return 0;
  }
  const runs = own.runs === undefined ? 5 : Number(own.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100 || !/^\d+$/.test(String(own.runs ?? 5)))
    throw new KmodvmError('usage', `--runs must be a whole number from 1 to 100, got ${JSON.stringify(own.runs)}`, { hint: 'kmodvm bench --runs 3' });
  // --rows floor,boot_to_ssh: measure just these rows (for iterating on one figure).
  const only = typeof own.rows === 'string' ? new Set(own.rows.split(',')) : undefined;
  const want = (key: string): boolean => !only || only.has(key);
  const img = await ensureImage(c, log);
  const { accel } = chooseAccel(c.accel, hostFacts());
  const out = path.join(c.runsDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(out, { recursive: true });
  // As npm run and npx start them: the compiled CLI (bin/kmodvm.js).
  const ts = (command: string, args: string[], o: { timeout?: number; all?: boolean } = {}) =>
    execa(process.execPath, [path.join(c.root, 'bin/kmodvm.js'), command, ...args], { reject: false, cwd: c.root, ...o });
  const rows: BenchRow[] = [];
  const row = (key: string, label: string): BenchRow => {
    const r = { key, label, samples: [] as number[] };
    rows.push(r);
    return r;
  };

  // floor: the same kernel, a busybox initramfs whose init powers off at once.
  if (want('floor')) {
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

  const timed = async (r: BenchRow, args: string[], n = runs, wanted = want(r.key)): Promise<void> => {
    if (!wanted) return;
    for (let i = 0; i < n; i++) {
      const t0 = Date.now();
      const p = await ts('test', ['--runs-dir', out, ...args], { timeout: 20 * 60_000 });
      if (p.exitCode === 0) r.samples.push((Date.now() - t0) / 1000);
      else log(`${r.key}: a run failed (exit ${p.exitCode}); not counted`);
    }
    log(`${r.key}: ${r.samples.map((x) => x.toFixed(2)).join(' ')}`);
  };
  await timed(row('warm_vm_test', 'warm `vm:test`, default build mode'), []);
  // The guest build with make: the first guest build of a module shape, which
  // also records kbuild's commands (guest-kbuild.ts); measured once, like the
  // cold image build. The rows after it replay the record.
  const makeRow = row('guest_build_make', 'warm `vm:test --build guest --no-replay` (make in the guest; once)');
  await timed(makeRow, ['--build', 'guest', '--no-replay'], 1, want('guest_build_make') || want('warm_vm_test_guest_build'));
  await timed(row('warm_vm_test_guest_build', "warm `vm:test --build guest` (kbuild's recorded commands replayed in the guest)"), ['--build', 'guest']);

  // save to verdict: vm:watch on a copy of the sources, one-line changes.
  const mod = row('watch_module', 'watch: save to verdict, one-line module change');
  const app = row('watch_app', 'watch: save to verdict, one-line app change');
  if (want('watch_module') || want('watch_app')) {
    const src = await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-src-'));
    await cp(path.join(c.root, 'kernel-module'), path.join(src, 'kernel-module'), { recursive: true });
    await cp(path.join(c.root, 'userapp'), path.join(src, 'userapp'), { recursive: true });
    await cp(path.join(c.root, 'kmodvm.yaml'), path.join(src, 'kmodvm.yaml'));
    await cp(path.join(c.root, 'test/expected'), path.join(src, 'test/expected'), { recursive: true });
    const name = `bench-${process.pid}`;
    const w = ts('watch', ['--name', name, '--suite', path.join(src, 'kmodvm.yaml'), '--runs-dir', out], { all: true });
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
    await ts('down', ['--name', name]);
    log(`watch: module ${mod.samples.join(' ')}; app ${app.samples.join(' ')}`);
  }

  // Scale: one suite of 20 small tests on one VM (a module with a parameter, each test a shell line).
  const suiteTotal = row('suite_20_total', 'suite of 20 small tests on one VM, warm `vm:test --suite` (total)');
  const perTest = row('suite_per_test', 'suite of 20 small tests: cost per test after the first (mean of tests 2-20)');
  if (want('suite_20_total') || want('suite_per_test')) {
    const dir = await benchSuite(await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-suite-')), 20);
    await ts('test', ['--runs-dir', out, '--suite', path.join(dir, 'kmodvm.yaml')], { timeout: 20 * 60_000 }); // warms the host build tree's first kbuild
    for (let i = 0; i < runs; i++) {
      const t0 = Date.now();
      const p = await ts('test', ['--runs-dir', out, '--suite', path.join(dir, 'kmodvm.yaml')], { timeout: 20 * 60_000 });
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

  // classic is the stock way: systemd, the stock initrd, the compressed kernel, and make in the guest.
  await timed(row('classic', 'classic: `vm:test --profile systemd --build guest --no-replay` (systemd, stock initrd, compressed kernel, make in the guest)'), [
    '--profile',
    'systemd',
    '--build',
    'guest',
    '--no-replay',
  ]);
  await benchCli(c, runs, row, { want, log });
  const cold = row('cold_image_build', 'cold image build (from the image manifest, once)');
  cold.samples.push(img.manifest.buildSeconds);
  const result = summarize(rows, runs, accel);
  const md = markdownTable(rows, result);
  await writeFile(path.join(out, 'bench.md'), `${md}\n`);
  await writeFile(path.join(out, 'bench.json'), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`${md}\n\n${path.join(out, 'bench.json')}\n`);
  return 0;
});
