// kmodvm logs [-f] (npm run vm:logs): the instance's serial console.
import { existsSync } from 'node:fs';
import { KmodvmError } from '../../core/errors.ts';
import { requireRunning } from '../../vm/instance.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config, own } = i.parse();
  const state = await requireRunning(config, config.name, log);
  if (!existsSync(state.serialLog)) throw new KmodvmError('boot', `no serial log at ${state.serialLog}`);
  // tail(1) does the following; it ends when we are interrupted.
  const follow = Boolean(own.follow);
  const { execa } = await import('execa');
  const r = await execa('tail', [follow ? '-f' : '-n', follow ? '-n+1' : '+1', state.serialLog], { stdout: 'inherit', stderr: 'inherit', reject: false });
  return r.exitCode ?? 0;
}
