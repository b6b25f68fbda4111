// kmodvm status (npm run vm:status): the running instances, a row each.
import { kmodvmCommand } from '../../core/invoked.ts';
import { listNames, lookup, uptime } from '../../vm/instance.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config } = i.parse();
  const rows: string[][] = [['NAME', 'PID', 'PORT', 'UPTIME', 'ACCEL', 'IMAGE', 'KERNEL']];
  for (const name of await listNames(config)) {
    const l = await lookup(config, name);
    if (!l.alive) {
      if (l.staleNote) log(l.staleNote);
      continue;
    }
    const s = l.state;
    rows.push([s.name, String(s.pid), String(s.port), uptime(s), s.accel, s.imageKey, s.kernelVersion]);
  }
  if (rows.length === 1) {
    log(`no instances are up; start one with ${kmodvmCommand('up')}`);
    return 0;
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((x, i) => x.padEnd(w[i]))
        .join('  ')
        .trimEnd()}\n`,
    );
  return 0;
}
