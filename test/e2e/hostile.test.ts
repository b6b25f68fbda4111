// The hostile-input suite (issue 3), in one real guest boot. Each case runs
// test/hostile/nl_hostile in the guest; after each: no splat in the new
// kernel log, the module still answers a normal message, the taint flags
// hold only O and E. KMODVM_HOSTILE_MODULE_DIR points it at another module
// (that is how the article's original code was judged: docs/netlink.md).
import { mkdtempSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t, { type Test } from 'tap';
import { loadConfig } from '../../scripts/lib/core/flags.ts';
import type { SshSession } from '../../scripts/lib/guest/ssh.ts';
import { chooseAccel, hostFacts } from '../../scripts/lib/host/accel.ts';
import { preflight } from '../../scripts/lib/host/preflight.ts';
import { ensureImage } from '../../scripts/lib/image/build.ts';
import { bootVm } from '../../scripts/lib/loop/boot.ts';
import { isBuildProduct } from '../../scripts/lib/suite/files.ts';
import { findSplats, formatSplat, loadRules } from '../../scripts/lib/verdict/splat.ts';
import { unexpectedTaint } from '../../scripts/lib/verdict/taint-flags.ts';
import type { Vm } from '../../scripts/lib/vm/vm.ts';

const root = new URL('../../', import.meta.url).pathname;
const W = '/root/kmodvm';
const moduleDir = process.env.KMODVM_HOSTILE_MODULE_DIR ?? path.join(root, 'kernel-module');
const { config } = loadConfig(['--runs-dir', mkdtempSync(path.join(os.tmpdir(), 'kmodvm-hostile-'))]);
const rules = loadRules([path.join(root, 'rules/splat.json')]);
const log = (l: string): void => {
  t.comment(l);
};

await preflight(log);
const img = await ensureImage(config, log);
let vm: Vm;
let session: SshSession;
const sh = async (script: string, timeoutS = 120) => session.exec(['sh', '-c', script], { timeoutMs: timeoutS * 1000 });
const must = async (what: string, script: string, timeoutS = 300): Promise<string> => {
  const r = await sh(script, timeoutS);
  if (r.exitCode !== 0) throw new Error(`${what} failed (${r.reason}):\n${r.stdout}\n${r.stderr}`);
  return r.stdout;
};
const KO = `${W}/kernel-module/netlink_simple_intf.ko`;

/** Boots a fresh guest with the module loaded: at the start, and again after a case killed the kernel. */
async function freshGuest(): Promise<void> {
  const runDir = mkdtempSync(path.join(config.runsDir, 'run-'));
  ({ vm, session } = await bootVm(config, img, chooseAccel(config.accel, hostFacts()).accel, runDir, log));
  await sh(`mkdir -p ${W}`);
  await session.upload(moduleDir, `${W}/kernel-module`, isBuildProduct);
  await session.upload(path.join(root, 'userapp'), `${W}/userapp`, isBuildProduct);
  await session.upload(path.join(root, 'test/hostile'), `${W}/hostile`, (rel) => rel === 'nl_hostile');
  await must('building the module, the app and the hostile client', `make -s -C ${W}/kernel-module && make -s -C ${W}/userapp && make -s -C ${W}/hostile`, 900);
  await must('insmod', `insmod ${KO} && dmesg -c > /dev/null`);
}
await freshGuest();
t.teardown(async () => {
  session.close();
  await vm.kill();
});
const taint0 = Number((await must('taint', 'cat /proc/sys/kernel/tainted')).trim());

/** The checks after every case. */
async function healthy(t: Test): Promise<void> {
  const dm = await sh('dmesg -c');
  const splats = findSplats(dm.stdout, rules, 'dmesg');
  t.same(
    splats.map((s) => s.id),
    [],
    splats.length ? formatSplat(splats[0]) : 'no splat in the kernel log',
  );
  const app = await sh(`cd ${W}/userapp && ./netlink_userapp -q -t 5`, 30);
  t.equal(app.exitCode, 0, `the module still answers a normal message${app.exitCode ? `: ${app.stderr}` : ''}`);
  const taint = Number((await sh('cat /proc/sys/kernel/tainted')).stdout.trim());
  t.same(unexpectedTaint(taint0 & ~12288, taint), [], `taint ${taint}: only O and E`);
}

const cases: [string, string, number?][] = [
  ['1 a datagram shorter than a netlink header', 'short'],
  ['2 nlmsg_len larger than the data sent', 'len-too-big'],
  ['3 nlmsg_len smaller than a header', 'len-too-small'],
  ['4 a 1024-byte payload with no NUL', 'no-nul'],
  ['5 a payload near the largest datagram (200 KiB)', 'near-max'],
  ['6 two messages in one datagram', 'two-in-one'],
  ['7 a spoofed nlmsg_pid naming another socket', 'spoofed-pid'],
  ['7b the control types NOOP, ERROR, DONE and OVERRUN get no answer; type 0 still does', 'control'],
  ['8 20,000 messages sent without reading the replies', 'flood', 600],
  ['9 8 concurrent senders x 300 messages', 'concurrent', 600],
  ["13 a well-formed message with nlmsg_pid 0 (the article's kernel panic)", 'zero-pid'],
];
for (const [name, c, timeoutS] of cases) {
  await t.test(name, async (t) => {
    const r = await sh(`${W}/hostile/nl_hostile ${c}`, timeoutS ?? 120);
    t.equal(r.exitCode, 0, (r.stdout + r.stderr).trim() || r.reason);
    // A lost connection may mean a dead kernel: panic=-1 ends QEMU within moments.
    if (r.exitCode === undefined) await Promise.race([vm.waitExit(), new Promise((res) => setTimeout(res, 10_000))]);
    if (vm.alive) await healthy(t);
    else {
      const serial = await vm.serialTail(100000);
      const splat = findSplats(serial, rules, 'serial.log')[0];
      t.fail(`the guest died: ${splat ? formatSplat(splat).split('\n').slice(0, 8).join('\n') : await vm.serialTail(20)}`);
      // The next case gets a kernel nobody has corrupted.
      session.close();
      await vm.kill();
      await freshGuest();
    }
  });
}

await t.test('10 an unprivileged user may send (decision in docs/netlink.md) and gets the reply', async (t) => {
  const r = await sh(`cd ${W}/userapp && setpriv --reuid=65534 --regid=65534 --clear-groups ./netlink_userapp -t 5`);
  t.equal(r.exitCode, 0, r.stderr || r.reason);
  t.match(r.stdout, /msg from kernel netlink: "Reply from kernel netlink"/);
  await healthy(t);
});

await t.test('11 rmmod while a client is blocked in receive', async (t) => {
  const r = await sh(`${W}/hostile/nl_hostile blocked-rmmod 31 netlink_simple_intf`);
  t.equal(r.exitCode, 0, (r.stdout + r.stderr).trim() || r.reason);
  const dm = await sh('dmesg -c');
  t.same(
    findSplats(dm.stdout, rules, 'dmesg').map((s) => s.id),
    [],
    'no splat',
  );
  // Once the client has closed its socket, the module unloads (if the refused rmmod left it) and loads again.
  await sh('rmmod netlink_simple_intf');
  t.equal((await sh('grep -c ^netlink_simple_intf /proc/modules')).stdout.trim(), '0', 'the module unloads once the client is gone');
  t.equal((await sh(`insmod ${KO}`)).exitCode, 0, 'the module loads again');
  await healthy(t);
});

await t.test('12 100 load/unload cycles', async (t) => {
  const r = await sh(
    `rmmod netlink_simple_intf && i=0; while [ $i -lt 100 ]; do insmod ${KO} || exit 1; rmmod netlink_simple_intf || exit 2; i=$((i + 1)); done; insmod ${KO}`,
    600,
  );
  t.equal(r.exitCode, 0, r.stderr || r.reason);
  await healthy(t);
});

await t.test('protocol: out of range is refused with EINVAL; a protocol already owned fails with a clear message', async (t) => {
  await must(
    'a second copy of the module under another name',
    `mkdir -p ${W}/clash && cp ${W}/kernel-module/*.c ${W}/kernel-module/*.h ${W}/clash/ && printf 'obj-m := nl_clash.o\\nnl_clash-y := netlink_simple_intf.o\\n' > ${W}/clash/Kbuild && make -s -C /lib/modules/$(uname -r)/build M=${W}/clash modules`,
    900,
  );
  const clash = await sh(`insmod ${W}/clash/nl_clash.ko; echo "rc=$?"; dmesg -c | tail -n 3`);
  t.match(clash.stdout, /rc=[1-9]/, 'the second module does not load');
  t.match(clash.stderr + clash.stdout, /Address already in use/);
  t.match(clash.stdout, /netlink_kernel_create\(protocol=31\) failed: the protocol is already in use/);
  await sh('rmmod netlink_simple_intf');
  for (const p of [99, 22, 17]) {
    // 17 is reserved and 18..22 are the kernel's own (SCSITRANSPORT, ECRYPTFS, RDMA, CRYPTO, SMC): 23..31 only.
    const range = await sh(`insmod ${KO} protocol=${p}; echo "rc=$?"; dmesg -c | tail -n 2`);
    t.match(range.stdout, /rc=[1-9]/, `protocol=${p} is refused`);
    t.match(range.stderr + range.stdout, /Invalid (argument|parameters)/, 'EINVAL, as kmod words it');
    t.match(range.stdout, new RegExp(`protocol=${p} is out of range \\(23\\.\\.31\\)`));
  }
  t.equal((await sh(`insmod ${KO} protocol=23 && rmmod netlink_simple_intf`)).exitCode, 0, 'protocol=23, the first free one, loads');
  t.equal((await sh(`insmod ${KO}`)).exitCode, 0, 'the default still loads');
  await healthy(t);
});

await t.test('the module builds with W=1 and no warnings', async (t) => {
  const r = await sh(`cd ${W}/kernel-module && make clean >/dev/null && make W=1 2>&1`, 900);
  t.equal(r.exitCode, 0, r.stdout);
  t.notMatch(r.stdout, /warning:/);
});

await t.test('the module still unloads at the end, cleanly', async (t) => {
  const r = await sh('rmmod netlink_simple_intf');
  t.equal(r.exitCode, 0, r.stderr);
  const serial = await vm.serialTail(100000);
  t.same(
    findSplats(serial, rules, 'serial.log').map((s) => s.id),
    [],
    'no splat on the serial console in the whole run',
  );
});
