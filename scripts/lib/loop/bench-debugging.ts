// The bench's rows for issue 26: gdb's attach to a running instance (to the
// end of an empty batch script, the module's symbols in), and what one more
// --repeat run costs, on a fresh resumed guest and on the same guest. Each
// is measured through the compiled CLI, in this one bench run.
import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type Bench, cli as benchCli } from './bench-rows.ts';

const cli = (b: Bench, command: string, args: string[]) => benchCli(b, command, args, { timeout: 20 * 60_000 });

/** kmodvm gdb on an instance with the netlink demo's module loaded. */
async function benchGdb(b: Bench): Promise<void> {
  if (!b.want('gdb_attach')) return;
  const row = b.row('gdb_attach', "`kmodvm gdb --batch` on a running instance: attached, the module's symbols in, detached");
  const name = `bench-gdb-${process.pid}`;
  const script = path.join(await mkdtemp(path.join(os.tmpdir(), 'kmodvm-bench-gdb-')), 'empty.gdb');
  await writeFile(script, '');
  await cli(b, 'up', ['--name', name]);
  try {
    // The suite's run builds the module into the instance's tree; then it is loaded again, to stay.
    await cli(b, 'test', ['--reuse', name, '--runs-dir', b.out]);
    await cli(b, 'ssh', ['--name', name, '--', 'sh', '-c', 'insmod "$(find /root/kmodvm -name netlink_simple_intf.ko | head -n 1)"']);
    for (let i = 0; i < b.runs; i++) {
      const t0 = Date.now();
      const r = await cli(b, 'gdb', ['--name', name, '--batch', script]);
      if (r.exitCode === 0 && r.stdout.includes('netlink_simple_intf symbols loaded')) row.samples.push((Date.now() - t0) / 1000);
      else b.log(`gdb_attach: a run failed (exit ${r.exitCode}); not counted`);
    }
  } finally {
    await cli(b, 'down', ['--name', name]);
  }
  b.log(`gdb_attach: ${row.samples.map((x) => x.toFixed(2)).join(' ')}`);
}

/** One more run of a one-test suite under --repeat: (repeat 6 − repeat 1) / 5, fresh guests and one guest. */
async function benchRepeat(b: Bench): Promise<void> {
  const fresh = b.row('repeat_per_run', '`--repeat`: each run after the first, on a fresh resumed guest (the netlink demo)');
  const same = b.row('repeat_per_run_same_guest', '`--repeat --same-guest`: each run after the first, on one guest');
  if (!b.want('repeat_per_run') && !b.want('repeat_per_run_same_guest')) return;
  const wall = async (args: string[]): Promise<number | undefined> => {
    const t0 = Date.now();
    const r = await cli(b, 'test', ['--runs-dir', b.out, ...args]);
    return r.exitCode === 0 ? (Date.now() - t0) / 1000 : undefined;
  };
  await wall([]);
  for (let i = 0; i < b.runs; i++) {
    const one = await wall([]);
    const six = await wall(['--repeat', '6']);
    const sixSame = await wall(['--repeat', '6', '--same-guest']);
    if (one !== undefined && six !== undefined) fresh.samples.push((six - one) / 5);
    if (one !== undefined && sixSame !== undefined) same.samples.push((sixSame - one) / 5);
  }
  b.log(`repeat: fresh ${fresh.samples.map((x) => x.toFixed(2)).join(' ')}; same guest ${same.samples.map((x) => x.toFixed(2)).join(' ')}`);
}

export async function benchDebugging(b: Bench): Promise<void> {
  await benchGdb(b);
  await benchRepeat(b);
}
