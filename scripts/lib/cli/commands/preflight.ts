// kmodvm preflight: the host's tools on their own. npm test runs it first, so
// a fresh machine gets its tools (or the one command to install them) before
// the suite starts.
import { preflight } from '../../host/preflight.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  i.parse();
  await preflight(log);
  return 0;
}
