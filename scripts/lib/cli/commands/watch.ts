// kmodvm watch (npm run vm:watch): edit, save, see the verdict.

import { watch } from '../../loop/watch.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config } = i.parse();
  await watch(config, log);
  return 0;
}
