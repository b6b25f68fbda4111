import { readFileSync } from 'node:fs';
import t from 'tap';
import { kmodvmCommand, NPM_SCRIPTS } from '../../../scripts/lib/core/invoked.ts';

t.test("a hint's command in the form the user ran kmodvm: npm run inside this checkout's scripts, else npx kmodvm", async (t) => {
  const npmRun = { npm_package_name: 'kmodvm', npm_lifecycle_event: 'vm:test' };
  t.equal(kmodvmCommand('down', '--name x', npmRun), 'npm run vm:down -- --name x');
  t.equal(kmodvmCommand('up', '', npmRun), 'npm run vm:up');
  t.equal(
    kmodvmCommand('down', '--name x', { npm_package_name: 'my-driver', npm_lifecycle_event: 'npx' }),
    'npx kmodvm down --name x',
    'npx in a module repository',
  );
  t.equal(kmodvmCommand('down', '--name x', {}), 'npx kmodvm down --name x', 'bin/kmodvm.js or a global install');
  t.equal(kmodvmCommand('gdb', '', npmRun), 'npx kmodvm gdb', 'a command without an npm script');
});

t.test("the table is package.json's scripts", async (t) => {
  const scripts = JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')).scripts as Record<string, string>;
  for (const [command, script] of Object.entries(NPM_SCRIPTS)) t.match(scripts[script], new RegExp(`bin/kmodvm\\.js ${command}$`), script);
});
