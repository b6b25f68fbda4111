// The graders must discriminate: each reference solution passes its own
// grader in the VM, and each starter fails it. A grader that passes the
// starter proves nothing.
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { EXERCISES } from '../../scripts/lib/loop/lab.ts';

const root = new URL('../../', import.meta.url).pathname;
const check = (args: string[]) =>
  execa(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'scripts/kmodvm.ts'), 'lab-check', ...args], {
    reject: false,
    cwd: root,
    timeout: 20 * 60_000,
  });

for (const e of EXERCISES) {
  t.test(`exercise ${e.n}: the solution scores 5/5`, async (t) => {
    const r = await check([String(e.n), '--solution']);
    t.equal(r.exitCode, 0, r.stdout + r.stderr.split('\n').slice(-20).join('\n'));
    t.match(r.stdout, /score: 5\/5/);
  });
  t.test(`exercise ${e.n}: the starter fails, with a hint`, async (t) => {
    const r = await check([String(e.n)]);
    t.equal(r.exitCode, 1, r.stdout);
    t.match(r.stdout, /score: [0-4]\/5/);
    t.match(r.stdout, /^hint: /m);
  });
}
