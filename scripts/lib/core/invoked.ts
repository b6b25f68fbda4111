// The command line a hint tells the user to run, in the form they ran kmodvm
// with: `npm run vm:down -- --name x` inside this checkout's npm scripts,
// else `npx kmodvm down --name x` (in a module repository, where npm run
// vm:down is a "Missing script"; npx also works in this checkout).

/** This package's npm scripts for its commands (package.json's "scripts"; a test keeps them equal). */
export const NPM_SCRIPTS: Readonly<Record<string, string>> = {
  test: 'vm:test',
  up: 'vm:up',
  ssh: 'vm:ssh',
  logs: 'vm:logs',
  status: 'vm:status',
  down: 'vm:down',
  watch: 'vm:watch',
  image: 'vm:image',
  judge: 'judge',
  bench: 'bench',
  'lab-check': 'lab:check',
};

/** `kmodvm <command> <args>` as the user should type it here. */
export function kmodvmCommand(command: string, args = '', env: NodeJS.ProcessEnv = process.env): string {
  const script = NPM_SCRIPTS[command];
  const viaNpmRun = script && env.npm_package_name === 'kmodvm' && Object.values(NPM_SCRIPTS).includes(env.npm_lifecycle_event ?? '');
  if (viaNpmRun) return `npm run ${script}${args ? ` -- ${args}` : ''}`;
  return `npx kmodvm ${command}${args ? ` ${args}` : ''}`;
}
