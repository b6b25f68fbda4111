// npm run vm:watch [-- --name NAME]: edit, save, see the verdict.
import { log, main } from './lib/cli/cli.ts';
import { loadConfig } from './lib/core/flags.ts';
import { watch } from './lib/loop/watch.ts';

await main(async () => {
  const { config } = loadConfig(process.argv.slice(2));
  await watch(config, log);
  return 0;
});
