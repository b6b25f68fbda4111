// kmodvm gdb [--name N] [--batch FILE]: gdb on a running instance, with its out-of-tree modules' symbols (docs/debugging.md).
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config } = i.parse();
  const { gdbOnInstance } = await import('../../loop/gdb-instance.ts');
  const r = await gdbOnInstance(config, log);
  if (config.gdbBatch) process.stdout.write(`${r.stdout}${r.stderr ? `\n${r.stderr}` : ''}`);
  return r.exitCode ?? 1;
}
