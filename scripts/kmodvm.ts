// kmodvm COMMAND [options]: every command, from the one table in
// scripts/lib/cli/commands.ts. bin/kmodvm.js runs the compiled copy of this
// file (dist/), so no command pays for TypeScript at start.
import { runCli } from './lib/cli/commands.ts';

await runCli(process.argv.slice(2));
