// kmodvm COMMAND [options]: every command, from the table in
// scripts/lib/cli/commands.ts. bin/kmodvm.js runs the compiled copy of this
// file (dist/), so no command pays for TypeScript at start.
import { COMMANDS, type CommandName, commandsHelp } from './lib/cli/commands.ts';

const [cmd, ...rest] = process.argv.slice(2);
if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  process.stdout.write(`${commandsHelp()}\n`);
  process.exit(cmd ? 0 : 2);
}
if (!Object.hasOwn(COMMANDS, cmd)) {
  process.stderr.write(`error [usage]: no command "${cmd}"\nnext: run kmodvm --help for the commands\n`);
  process.exit(2);
}
const c = COMMANDS[cmd as CommandName];
process.argv = [process.argv[0], c.script, ...('fixed' in c ? c.fixed : []), ...rest];
// Literal paths, so the bundler makes each command a chunk loaded on demand.
const load: Record<string, () => Promise<unknown>> = {
  'vm-test.ts': () => import('./vm-test.ts'),
  'vm-instance.ts': () => import('./vm-instance.ts'),
  'vm-mux.ts': () => import('./vm-mux.ts'),
  'vm-watch.ts': () => import('./vm-watch.ts'),
  'vm-image.ts': () => import('./vm-image.ts'),
  'judge.ts': () => import('./judge.ts'),
  'bench.ts': () => import('./bench.ts'),
  'lab-check.ts': () => import('./lab-check.ts'),
};
await load[c.script]();
