// The guest cannot reach the host's services (issue 18.5): QEMU's user
// network is restricted, so 10.0.2.2 (the host's 127.0.0.1) answers nothing,
// while the forwarded SSH port keeps working. With --guest-net, the same
// connection reaches the listener: the test can tell the two apart.

import { mkdtempSync } from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { loadConfig } from '../../scripts/lib/core/flags.ts';
import { chooseAccel, hostFacts } from '../../scripts/lib/host/accel.ts';
import { preflight } from '../../scripts/lib/host/preflight.ts';
import { ensureImage } from '../../scripts/lib/image/build.ts';
import { bootVm } from '../../scripts/lib/loop/boot.ts';

const log = (l: string): void => {
  t.comment(l);
};
const runs = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-isolation-'));

/** A listener on the host's 127.0.0.1 that counts the connections it accepts. */
async function listener(): Promise<{ port: number; accepted: () => number; close: () => void }> {
  let n = 0;
  const srv = net.createServer((s) => {
    n++;
    s.end('host secret\n');
  });
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', r));
  return { port: (srv.address() as net.AddressInfo).port, accepted: () => n, close: () => srv.close() };
}

async function tryFromGuest(args: string[], port: number): Promise<{ exitCode?: number; out: string }> {
  const { config } = loadConfig(['--runs-dir', runs, ...args]);
  await preflight(log);
  const img = await ensureImage(config, log);
  const b = await bootVm(config, img, chooseAccel(config.accel, hostFacts()).accel, mkdtempSync(path.join(runs, 'run-')), log);
  try {
    const r = await b.session.exec(['sh', '-c', `busybox nc -w 3 10.0.2.2 ${port} </dev/null; echo "nc exit $?"`], { timeoutMs: 30_000 });
    return { exitCode: r.exitCode, out: r.stdout + r.stderr };
  } finally {
    b.session.close();
    await b.vm.kill();
  }
}

t.test("by default the guest cannot reach a listener on the host's 127.0.0.1 (10.0.2.2), and SSH still works", async (t) => {
  const l = await listener();
  t.teardown(l.close);
  const r = await tryFromGuest([], l.port);
  t.equal(r.exitCode, 0, 'the command ran over the forwarded SSH port');
  t.notMatch(r.out, /host secret/, 'nothing came back from the host');
  t.equal(l.accepted(), 0, `the host's listener accepted no connection (guest said: ${r.out.trim()})`);
});

t.test('with --guest-net the same connection reaches it (so the test above can fail)', async (t) => {
  const l = await listener();
  t.teardown(l.close);
  const r = await tryFromGuest(['--guest-net'], l.port);
  t.match(r.out, /host secret/, r.out);
  t.ok(l.accepted() >= 1, 'the listener accepted the guest');
});
