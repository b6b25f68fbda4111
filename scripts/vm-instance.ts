// kmodvm up | ssh | logs | status | down  (npm run vm:up ...; all but status take --name NAME)
import { existsSync } from 'node:fs';
import path from 'node:path';
import { log, main } from './lib/cli/cli.ts';
import { type CommandName, helpFor, parseCommand, splitLeading } from './lib/cli/commands.ts';
import { KmodvmError } from './lib/core/errors.ts';
import { remoteCommand } from './lib/guest/ssh.ts';
import { connect, listNames, lookup, requireRunning, uptime } from './lib/vm/instance.ts';
import { MUX_SOCK, muxExec } from './lib/vm/mux.ts';

const [verb, ...rest] = process.argv.slice(2);

async function up(argv: string[]): Promise<number> {
  const { config } = parseCommand('up', argv);
  // Loaded here, not at the top: ssh, logs and status start without the whole pipeline.
  const { upInstance } = await import('./lib/loop/instance-run.ts');
  const { state, already } = await upInstance(config, config.name, log);
  if (already) log(`instance ${state.name} is already up (pid ${state.pid}, up ${uptime(state)}); nothing to do`);
  const named = state.name === 'default' ? '' : ` -- --name ${state.name}`;
  log(
    [
      `get in:   npm run vm:ssh${named}`,
      `or:       ssh -i ${state.clientKey} -p ${state.port} -o UserKnownHostsFile=${state.dir}/known_hosts root@127.0.0.1`,
      `console:  npm run vm:logs -- ${state.name === 'default' ? '' : `--name ${state.name} `}-f   (${state.serialLog})`,
      `stop:     npm run vm:down${named}`,
    ].join('\n'),
  );
  return 0;
}

async function ssh(argv: string[]): Promise<number> {
  const { opts, rest: command } = splitLeading('ssh', argv);
  const { config } = parseCommand('ssh', opts);
  const state = await requireRunning(config, config.name, log);
  const stdin = process.stdin.isTTY ? undefined : process.stdin;
  if (command.length > 0) {
    // The instance's kept connection (vm/mux.ts), when it has one: no SSH handshake.
    const viaMux = await muxExec(path.join(state.dir, MUX_SOCK), command, { stdin, stdout: process.stdout, stderr: process.stderr });
    if (viaMux !== undefined) return viaMux;
  }
  const session = await connect(state);
  try {
    if (command.length === 0) return await session.shell();
    return await session.execStream(remoteCommand(command), {
      stdin: process.stdin.isTTY ? undefined : process.stdin,
      stdout: process.stdout,
      stderr: process.stderr,
    });
  } finally {
    session.close();
  }
}

async function logs(argv: string[]): Promise<number> {
  const { config, own } = parseCommand('logs', argv);
  const state = await requireRunning(config, config.name, log);
  if (!existsSync(state.serialLog)) throw new KmodvmError('boot', `no serial log at ${state.serialLog}`);
  // tail(1) does the following; it ends when we are interrupted.
  const follow = Boolean(own.follow);
  const { execa } = await import('execa');
  const r = await execa('tail', [follow ? '-f' : '-n', follow ? '-n+1' : '+1', state.serialLog], { stdout: 'inherit', stderr: 'inherit', reject: false });
  return r.exitCode ?? 0;
}

async function status(argv: string[]): Promise<number> {
  const { config } = parseCommand('status', argv);
  const rows: string[][] = [['NAME', 'PID', 'PORT', 'UPTIME', 'ACCEL', 'IMAGE', 'KERNEL']];
  for (const name of await listNames(config)) {
    const l = await lookup(config, name);
    if (!l.alive) {
      if (l.staleNote) log(l.staleNote);
      continue;
    }
    const s = l.state;
    rows.push([s.name, String(s.pid), String(s.port), uptime(s), s.accel, s.imageKey, s.kernelVersion]);
  }
  if (rows.length === 1) {
    log('no instances are up; start one with npm run vm:up');
    return 0;
  }
  const w = rows[0].map((_, i) => Math.max(...rows.map((r) => r[i].length)));
  for (const r of rows)
    process.stdout.write(
      `${r
        .map((x, i) => x.padEnd(w[i]))
        .join('  ')
        .trimEnd()}\n`,
    );
  return 0;
}

async function down(argv: string[]): Promise<number> {
  const { config } = parseCommand('down', argv);
  const l = await lookup(config, config.name);
  if (!l.alive) {
    log(l.staleNote ?? `instance ${config.name} is not up`);
    return 0;
  }
  const { downInstance } = await import('./lib/loop/instance-run.ts');
  const how = await downInstance(l.state);
  log(`instance ${config.name}: ${how === 'clean' ? 'powered off' : 'did not power off within 5 s; killed'}`);
  return 0;
}

const VERBS: Record<string, (argv: string[]) => Promise<number>> = { up, ssh, logs, status, down };

await main(async () => {
  const run = Object.hasOwn(VERBS, verb) ? VERBS[verb] : undefined;
  if (!run) throw new KmodvmError('usage', `unknown command ${JSON.stringify(verb)}`, { hint: 'use up, ssh, logs, status or down' });
  if ((verb === 'ssh' ? splitLeading('ssh', rest).opts : rest).some((a) => a === '--help' || a === '-h')) {
    process.stdout.write(`${helpFor(verb as CommandName)}\n`);
    return 0;
  }
  return run(rest);
});
