// kmodvm mux --name NAME: started by `kmodvm up`, detached; keeps one SSH
// connection to the instance and serves `kmodvm ssh -- CMD` over a unix
// socket in its directory (vm/mux.ts). It ends when the instance's QEMU
// does, or on SIGTERM (vm:down).
import { rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { waitUntil } from '../../core/wait.ts';
import { remoteCommand } from '../../guest/ssh.ts';
import { connect, isQemuAlive, requireRunning } from '../../vm/instance.ts';
import { MUX_PID, MUX_SOCK, serveMux } from '../../vm/mux.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config } = i.parse();
  const state = await requireRunning(config, config.name, log);
  const session = await connect(state);
  const sock = path.join(state.dir, MUX_SOCK);
  await rm(sock, { force: true });
  const srv = await serveMux(sock, (argv, io) => session.execStream(remoteCommand(argv), io));
  await writeFile(path.join(state.dir, MUX_PID), `${process.pid}\n`);
  const ac = new AbortController();
  process.once('SIGTERM', () => ac.abort());
  // Until the instance's QEMU is gone (or we are told to stop): a check a second.
  await waitUntil(() => !isQemuAlive(state.pid) || session.closed, { deadlineMs: 2 ** 31 - 1, intervalMs: 1000, signal: ac.signal });
  srv.close();
  session.close();
  await rm(sock, { force: true });
  return 0;
}
