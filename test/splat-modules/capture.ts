// Captures real splats for test/fixtures/: boots the guest once per module
// (a panic ends the VM), builds test/splat-modules there, insmods one module,
// and saves the serial console and dmesg. Run: npx tsx test/splat-modules/capture.ts
import { copyFile, mkdir, mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { loadConfig } from '../../scripts/lib/core/flags.ts';
import { chooseAccel, hostFacts } from '../../scripts/lib/host/accel.ts';
import { ensureImage } from '../../scripts/lib/image/build.ts';
import { bootVm } from '../../scripts/lib/loop/boot.ts';

const root = new URL('../../', import.meta.url).pathname;
const { config } = loadConfig([]);
const img = await ensureImage(config, console.error);
const out = path.join(root, 'test/fixtures/splats');
await mkdir(out, { recursive: true });
for (const mod of ['splat_null_deref', 'splat_warn_on', 'splat_panic']) {
  const runDir = await mkdtemp(path.join(os.tmpdir(), `kmodvm-${mod}-`));
  const { vm, session } = await bootVm(config, img, chooseAccel(config.accel, hostFacts()).accel, runDir, console.error);
  try {
    await session.upload(path.join(root, 'test/splat-modules'), '/root/splat', (rel) => /\.(o|ko|cmd|mod)$/.test(rel) || rel === 'capture.ts');
    const b = await session.exec(['make', '-s', '-C', '/root/splat'], { timeoutMs: 600_000 });
    if (b.exitCode !== 0) throw new Error(`build failed: ${b.stderr}`);
    const r = await session.exec(['insmod', `/root/splat/${mod}.ko`], { timeoutMs: 60_000 });
    console.error(`${mod}: insmod ${r.reason}`);
    if (vm.alive) {
      const d = await session.exec(['dmesg'], { timeoutMs: 60_000 });
      await writeFile(path.join(out, `${mod}.dmesg.log`), d.stdout);
    }
  } finally {
    session.close();
    await vm.kill();
  }
  await copyFile(path.join(runDir, 'serial.log'), path.join(out, `${mod}.serial.log`));
}
