import { readFileSync } from 'node:fs';
import t from 'tap';
import { COMMANDS, type CommandName, commandsHelp, exitCodesLine, helpFor, parseCommand, splitLeading } from '../../../scripts/lib/cli/commands.ts';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';
import { OPTIONS } from '../../../scripts/lib/core/options.ts';

const names = Object.keys(COMMANDS) as CommandName[];

t.test("each command's help lists exactly its own options, generated from the one table", async (t) => {
  for (const n of names) {
    const help = helpFor(n);
    const listed = [...help.matchAll(/^ {2}(?:-\w, )?--([\w-]+)/gm)].map((m) => m[1]);
    t.same(listed.sort(), [...COMMANDS[n].options].sort(), `${n}: the help and the parser agree`);
  }
  const test = helpFor('test');
  for (const f of ['--splat-rules FILE', '--kernel-image FILE', '--kernel-build-dir DIR', '--kernel-initrd FILE', '--verbose', '(env KMODVM_SHARD)'])
    t.match(test, f, `test's help has ${f}`);
  for (const n of names) t.match(commandsHelp(), new RegExp(`^ {2}${n} `, 'm'), `the top help lists ${n}`);
});

t.test('a command rejects a flag that is not its own, with a usage error (exit 2) naming its help', async (t) => {
  const usage = (f: () => unknown, re: RegExp) => {
    try {
      f();
      t.fail(`no error for ${re}`);
    } catch (e) {
      t.ok(e instanceof KmodvmError && e.failure === 'usage' && re.test(e.message) && /kmodvm \w[\w-]* --help/.test(e.hint ?? ''), String(e));
    }
  };
  usage(() => parseCommand('status', ['--kernel', 'debian-13'], {}), /Unknown option '--kernel'/);
  usage(() => parseCommand('down', ['--suite', 'x.yaml'], {}), /Unknown option '--suite'/);
  usage(() => parseCommand('judge', ['--accel', 'kvm'], {}), /Unknown option '--accel'/);
  usage(() => parseCommand('image', ['--only', 'a'], {}), /Unknown option '--only'/);
  t.equal(parseCommand('test', ['--kernel', 'debian-12', '--only', 'a', '--only', 'b'], {}).config.only.length, 2);
  t.equal(parseCommand('logs', ['-f'], {}).own.follow, true, "logs' own -f is not a Config field");
  t.equal(parseCommand('bench', ['--runs', '3', '--rows', 'floor'], {}).own.rows, 'floor');
});

t.test('environment variables come from the same table', async (t) => {
  const c = parseCommand('test', [], { KMODVM_SHARD: '1/2', KMODVM_CPUS: '3', KMODVM_RESUME: '0' }).config;
  t.same([c.shard, c.cpus, c.resume], ['1/2', 3, false]);
  for (const [n, o] of Object.entries(OPTIONS)) if ('env' in o) t.match(readFileSync('README.md', 'utf8'), o.env, `README names ${o.env} (--${n})`);
});

t.test('ssh: the leading options are its own, the guest command stays intact', async (t) => {
  t.same(splitLeading('ssh', ['--name', 'x', 'ls', '-l', '--name']), { opts: ['--name', 'x'], rest: ['ls', '-l', '--name'] });
  t.same(splitLeading('ssh', ['--name=x', '--', '--help']), { opts: ['--name=x'], rest: ['--help'] });
  t.same(splitLeading('ssh', ['uname', '-r']), { opts: [], rest: ['uname', '-r'] });
  t.same(splitLeading('ssh', ['--kernel', 'x']), { opts: [], rest: ['--kernel', 'x'] }, "a flag ssh does not take starts the guest's command");
});

t.test('the exit codes of --help come from the table (#29.18: it said 10-15 when there was no 15; 15 is now suite-setup)', async (t) => {
  t.equal(
    exitCodesLine(),
    'Exit codes: README.md "Exit codes" (0 pass; 1, 10-18 the code under test; 2 bad input; 3-6 the host, image, VM or upload; 70 kmodvm).',
  );
});
