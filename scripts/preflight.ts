// Host preflight on its own: npm test runs it first, so a fresh machine gets
// its tools (or the one command to install them) before the suite starts.
import { log, main } from './lib/cli/cli.ts';
import { preflight } from './lib/host/preflight.ts';

await main(async () => {
  await preflight(log);
  return 0;
});
