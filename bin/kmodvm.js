#!/usr/bin/env node
// kmodvm COMMAND [options]: the commands of `npm run vm:*` for a module
// repository that installed kmodvm (npm install <path or tarball>), as
// `npx kmodvm test`. The TypeScript runs through tsx, registered here in
// this same process.
import { register } from 'tsx/esm/api';

const COMMANDS = {
  test: ['vm-test.ts'],
  up: ['vm-instance.ts', 'up'],
  ssh: ['vm-instance.ts', 'ssh'],
  logs: ['vm-instance.ts', 'logs'],
  status: ['vm-instance.ts', 'status'],
  down: ['vm-instance.ts', 'down'],
  watch: ['vm-watch.ts'],
  image: ['vm-image.ts'],
  bench: ['bench.ts'],
  'lab-check': ['lab-check.ts'],
  judge: ['judge.ts'],
};
const HELP = `usage: kmodvm COMMAND [options]   (each command's --help lists its options)
  test     build, load and judge the suite (./kmodvm.yaml, or --suite FILE)
  up       boot an instance that stays up        ssh      a shell or one command on it
  watch    rebuild and rerun on every save       logs     its serial console
  status   the running instances                 down     power one off
  image    build, export, import or prune the guest image
  judge RUNDIR   judge a saved run again, without a VM (--transcript FILE: against another)
  bench    the measurements, in one run          lab-check N   grade a lab exercise
Exit codes: 0 pass; 1, 10-15 the module or app failed; 2 bad input; 3-5 the host or the VM; 70 a bug in kmodvm.`;

const [cmd, ...rest] = process.argv.slice(2);
if (!cmd || cmd === '--help' || cmd === '-h' || cmd === 'help') {
  process.stdout.write(`${HELP}\n`);
  process.exit(cmd ? 0 : 2);
}
const target = COMMANDS[cmd];
if (!target) {
  process.stderr.write(`error [usage]: no command "${cmd}"\nnext: run kmodvm --help for the commands\n`);
  process.exit(2);
}
register();
const [script, ...fixed] = target;
process.argv = [process.argv[0], new URL(`../scripts/${script}`, import.meta.url).pathname, ...fixed, ...rest];
await import(new URL(`../scripts/${script}`, import.meta.url).href);
