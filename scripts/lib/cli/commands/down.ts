// kmodvm down (npm run vm:down): power an instance off.
import { lookup } from '../../vm/instance.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config } = i.parse();
  const l = await lookup(config, config.name);
  if (!l.alive) {
    log(l.staleNote ?? `instance ${config.name} is not up`);
    return 0;
  }
  const { downInstance } = await import('../../loop/instance-run.ts');
  const how = await downInstance(l.state);
  log(`instance ${config.name}: ${how === 'clean' ? 'powered off' : 'did not power off within 5 s; killed'}`);
  return 0;
}
