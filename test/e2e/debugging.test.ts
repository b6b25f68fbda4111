// #26.1 end to end: gdb on the netlink demo's module in batch mode. The
// breakpoint is set by file:line in the user's own source (the line that
// prints what it received) and is hit when the app sends; gdb prints that line
// and the message's length (the app sends NLMSG_SPACE(1024) = 1040 bytes),
// and the backtrace shows the module's function. Then the test goes on and
// passes. --gdb-before-load stops in the module's init, with the stock
// kernel's symbols from Debian's -dbg. And --gdb's bad input, before anything
// boots. Never skipped.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-gdb-'));
const bin = path.join(root, 'bin/kmodvm.js');
const src = readFileSync(path.join(root, 'kernel-module/netlink_simple_intf.c'), 'utf8').split('\n');
const line = src.findIndex((l) => l.includes('pr_info("received from PID')) + 1;

const kmodvm = (args: string[]) =>
  execa('node', [bin, 'test', '--runs-dir', path.join(work, 'runs'), ...args], { cwd: root, reject: false, timeout: 20 * 60_000 });

t.test('a breakpoint at netlink_simple_intf.c:LINE is hit when the app sends; gdb prints the line and the length; the test passes', async (t) => {
  t.ok(line > 0, 'the line is in the source');
  const script = path.join(work, 'nl.gdb');
  writeFileSync(script, [`break netlink_simple_intf.c:${line}`, 'continue', 'print nlh->nlmsg_len', 'bt 2', 'delete', ''].join('\n'));
  const r = await kmodvm(['--gdb', 'netlink', '--batch', script]);
  t.equal(r.exitCode, 0, r.stderr.split('\n').slice(-30).join('\n'));
  const runDir = /run directory: (\S+)/.exec(r.stderr)![1];
  const report = JSON.parse(readFileSync(path.join(runDir, 'report.json'), 'utf8'));
  const gdb = report.tests[0].checks.find((c: { name: string }) => c.name === 'gdb');
  t.match(gdb, { ok: true, message: /^attached; gdb exited 0/ });
  const log = readFileSync(path.join(runDir, 'tests/netlink/gdb/gdb.log'), 'utf8');
  t.match(
    log,
    new RegExp(`Breakpoint 1, netlink_recv_and_reply \\(skb=[^)]*\\) at \\S*netlink_simple_intf\\.c:${line}\\n${line}\\t\\s*pr_info\\("received from PID`),
  );
  t.match(log, /\$1 = 1040\n/, 'the message length');
  t.match(log, /#0 {2}netlink_recv_and_reply \(skb=[^)]*\) at \S*netlink_simple_intf\.c:\d+\n/, 'bt shows the module frame');
  t.match(log, /\[Inferior 1 \(process 1\) detached\]/, 'gdb let the guest go');
  t.equal(report.tests[0].ok, true, 'the test went on and passed');
});

t.test(
  "--gdb-before-load with the stock kernel's symbols (--kernel-symbols): a breakpoint in the module's init is hit as it loads, with the kernel's frame under it",
  async (t) => {
    const script = path.join(work, 'init.gdb');
    writeFileSync(script, ['break netlink_simple_intf_init', 'continue', 'bt 2', 'info symbol $pc', 'delete', ''].join('\n'));
    const r = await kmodvm(['--gdb', 'netlink', '--gdb-before-load', '--kernel-symbols', '--batch', script]);
    t.equal(r.exitCode, 0, r.stderr.split('\n').slice(-30).join('\n'));
    const runDir = /run directory: (\S+)/.exec(r.stderr)![1];
    const log = readFileSync(path.join(runDir, 'tests/netlink/gdb/gdb.log'), 'utf8');
    t.match(log, /kmodvm: netlink_simple_intf is loading; its symbols are in\n/, "kmodvm's breakpoint in do_init_module added them");
    t.match(
      log,
      /Thread \d+ hit Breakpoint 1, netlink_simple_intf_init \(\) at \S*netlink_simple_intf\.c:\d+/,
      'the init breakpoint, pending until then, is hit',
    );
    t.match(
      log,
      /#1 +0x[0-9a-f]+ in do_one_initcall \(fn=0x[0-9a-f]+ <netlink_simple_intf_init>\) at init\/main\.c:\d+/,
      "the kernel's frame, from Debian's symbols",
    );
    t.match(log, /init_module in section \.init\.text of \S+netlink_simple_intf\.ko/, '.init.text is mapped');
    t.match(log, /\[Inferior 1 \(process 1\) detached\]/);
  },
);

t.test("--gdb's bad input exits 2 before anything boots, saying what to do", async (t) => {
  const none = await kmodvm(['--gdb', 'nosuch', '--batch', '/dev/null']);
  t.equal(none.exitCode, 2);
  t.match(none.stderr, /--gdb nosuch: the suite has no such test[\s\S]*the tests are: netlink/);
  const noTty = await kmodvm(['--gdb', 'netlink']);
  t.equal(noTty.exitCode, 2);
  t.match(noTty.stderr, /needs a terminal[\s\S]*--batch FILE/);
  const alone = await kmodvm(['--batch', '/dev/null']);
  t.equal(alone.exitCode, 2);
  t.match(alone.stderr, /goes with --gdb TEST/);
  const early = await kmodvm(['--gdb-before-load']);
  t.equal(early.exitCode, 2);
  t.match(early.stderr, /--gdb-before-load goes with --gdb TEST/);
});
