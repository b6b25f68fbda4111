import t from 'tap';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';
import { checkGdbAsk, gdbAsk, gdbWanted } from '../../../scripts/lib/suite/gdb-step.ts';

const tests = [{ name: 'a' }, { name: 'b' }];
const usage = (f: () => void, re: RegExp) => {
  try {
    f();
  } catch (e) {
    return e instanceof KmodvmError && e.failure === 'usage' && re.test(`${e.message}\n${e.hint ?? ''}`);
  }
  return false;
};

t.test("--gdb's bad input: no such test, a test the run does not take, no terminal without --batch, a batch that is not a file", async (t) => {
  t.doesNotThrow(() => checkGdbAsk('', '', tests, tests, false), 'no --gdb: nothing to check');
  t.ok(usage(() => checkGdbAsk('c', '/etc/hostname', tests, tests, true), /no such test[\s\S]*the tests are: a, b/));
  t.ok(usage(() => checkGdbAsk('b', '/etc/hostname', tests, [{ name: 'a' }], true), /does not take that test[\s\S]*--only b/));
  t.ok(usage(() => checkGdbAsk('a', '', tests, tests, false), /needs a terminal[\s\S]*--batch FILE/));
  t.ok(usage(() => checkGdbAsk('a', '/dev/null', tests, tests, false), /not a file/));
  t.doesNotThrow(() => checkGdbAsk('a', '', tests, tests, true), 'at a terminal');
});

t.test('--gdb-before-load: only with --gdb, and only where each test loads its modules', async (t) => {
  t.ok(usage(() => checkGdbAsk('', '', tests, tests, true, { beforeLoad: true }), /--gdb-before-load goes with --gdb TEST/));
  t.ok(usage(() => checkGdbAsk('a', '', tests, tests, true, { beforeLoad: true, loadOnce: true }), /load: once[\s\S]*load: per-test/));
  t.doesNotThrow(() => checkGdbAsk('a', '', tests, tests, true, { beforeLoad: true }));
});

t.test('every run of the named test under --repeat, and no other test', async (t) => {
  t.ok(gdbWanted('a', 'a'));
  t.ok(gdbWanted('a', 'a#3'));
  t.notOk(gdbWanted('a', 'ab'));
  t.notOk(gdbWanted('a', 'b#1'));
});

t.test("the kernel's tree goes to gdb only on a debug kernel; the run's kernel symbols and --gdb-before-load go as given", async (t) => {
  const c = { gdb: 'a', gdbBatch: '', gdbBeforeLoad: false, debugKernel: '', kernelBuildDir: '/k' };
  t.same(gdbAsk(c), { test: 'a', batch: undefined, kernelTree: undefined, vmlinux: undefined, beforeLoad: false });
  t.same(gdbAsk({ ...c, gdbBatch: '/s', debugKernel: 'debian-12-debug' })?.kernelTree, '/k');
  t.same(gdbAsk({ ...c, gdbBeforeLoad: true }, '/c/vmlinux'), { test: 'a', batch: undefined, kernelTree: undefined, vmlinux: '/c/vmlinux', beforeLoad: true });
  t.equal(gdbAsk({ ...c, gdb: '' }), undefined);
});
