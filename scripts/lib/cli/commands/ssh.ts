// kmodvm ssh [-- CMD] (npm run vm:ssh): a shell on the instance, or one command (through its kept
// connection when it has one, vm/mux.ts).
import path from 'node:path';
import { remoteCommand } from '../../guest/ssh.ts';
import { connect, requireRunning } from '../../vm/instance.ts';
import { MUX_SOCK, muxExec } from '../../vm/mux.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { opts, rest: command } = i.split(i.argv);
  const { config } = i.parse(opts);
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
