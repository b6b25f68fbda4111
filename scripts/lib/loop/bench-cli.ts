// The CLI's own rows for the bench: how long a command takes to start, and
// `kmodvm ssh -- true` on a running instance, each as users run it (the
// compiled CLI, bin/kmodvm.js) and as every command ran before it (tsx).
import path from 'node:path';
import { execa } from 'execa';
import type { Config } from '../core/config.ts';
import type { BenchRow } from './bench-table.ts';

type Row = (key: string, label: string) => BenchRow;

async function sample(r: BenchRow, runs: number, argv: string[], c: Pick<Config, 'cacheDir' | 'root'>): Promise<void> {
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    const p = await execa(process.execPath, argv, { reject: false, cwd: c.root, timeout: 60_000, env: { KMODVM_CACHE_DIR: c.cacheDir } });
    if (p.exitCode === 0) r.samples.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
}

/** The CLI-start rows and, with an instance up, the ssh rows. */
export async function benchCli(
  c: Pick<Config, 'accel' | 'cacheDir' | 'root'>,
  runs: number,
  row: Row,
  o: { want: (k: string) => boolean; log: (l: string) => void },
): Promise<void> {
  const bin = path.join(c.root, 'bin/kmodvm.js');
  const tsx = (script: string, ...a: string[]): string[] => ['--import', 'tsx', path.join(c.root, 'scripts', script), ...a];
  const start = row('cli_start', 'CLI start: `kmodvm status` (compiled, bin/kmodvm.js), no instance up');
  const startTsx = row('cli_start_tsx', 'CLI start: the same through tsx (how every command started before)');
  if (o.want('cli_start')) {
    await sample(start, runs, [bin, 'status', '--cache-dir', c.cacheDir], c);
    await sample(startTsx, runs, tsx('kmodvm.ts', 'status', '--cache-dir', c.cacheDir), c);
  }
  const ssh = row('ssh_true', '`kmodvm ssh -- true` on a running instance (compiled)');
  const sshTsx = row('ssh_true_tsx', '`kmodvm ssh -- true` through tsx');
  if (!o.want('ssh_true')) return;
  const name = `bench-ssh-${process.pid}`;
  const up = await execa(process.execPath, [bin, 'up', '--name', name, '--cache-dir', c.cacheDir, '--accel', c.accel], {
    reject: false,
    cwd: c.root,
    timeout: 10 * 60_000,
  });
  if (up.exitCode !== 0) {
    o.log(`ssh_true: kmodvm up failed (exit ${up.exitCode}); not measured\n${up.stderr}`);
    return;
  }
  try {
    await sample(ssh, 1, [bin, 'ssh', '--name', name, '--cache-dir', c.cacheDir, '--', 'true'], c); // the first connection warms the guest's sshd
    ssh.samples.length = 0;
    await sample(ssh, runs, [bin, 'ssh', '--name', name, '--cache-dir', c.cacheDir, '--', 'true'], c);
    await sample(sshTsx, runs, tsx('kmodvm.ts', 'ssh', '--name', name, '--cache-dir', c.cacheDir, '--', 'true'), c);
  } finally {
    await execa(process.execPath, [bin, 'down', '--name', name, '--cache-dir', c.cacheDir], { reject: false, timeout: 60_000 });
  }
  o.log(`cli: start ${start.samples.map((x) => x.toFixed(2)).join(' ')}; ssh -- true ${ssh.samples.map((x) => x.toFixed(2)).join(' ')}`);
}
