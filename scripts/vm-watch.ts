// npm run vm:watch [-- --name NAME]: edit, save, see the verdict.
import { log, main } from './lib/cli/cli.ts';
import { helpFor, parseCommand } from './lib/cli/commands.ts';
import { watch } from './lib/loop/watch.ts';

await main(async () => {
  const { config, help } = parseCommand('watch', process.argv.slice(2));
  if (help) {
    process.stdout.write(`${helpFor('watch')}\n`);
    return 0;
  }
  await watch(config, log);
  return 0;
});
