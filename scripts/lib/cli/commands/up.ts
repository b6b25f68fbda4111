// kmodvm up (npm run vm:up): boot an instance that stays up, to SSH into.
import { kmodvmCommand } from '../../core/invoked.ts';
import { uptime } from '../../vm/instance.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config } = i.parse();
  // Loaded here, not at the top: ssh, logs and status start without the whole pipeline.
  const { upInstance } = await import('../../loop/instance-run.ts');
  const { state, already } = await upInstance(config, config.name, log);
  if (already) log(`instance ${state.name} is already up (pid ${state.pid}, up ${uptime(state)}); nothing to do`);
  const named = state.name === 'default' ? '' : `--name ${state.name}`;
  log(
    [
      `get in:   ${kmodvmCommand('ssh', named)}`,
      `or:       ssh -i ${state.clientKey} -p ${state.port} -o UserKnownHostsFile=${state.dir}/known_hosts root@127.0.0.1`,
      `console:  ${kmodvmCommand('logs', `${named ? `${named} ` : ''}-f`)}   (${state.serialLog})`,
      `stop:     ${kmodvmCommand('down', named)}`,
    ].join('\n'),
  );
  return 0;
}
