import t from 'tap';
import { VALIDATE_SLABS } from '../../../scripts/lib/suite/checks/slab-check.ts';
import { insmodStep, kernelParam, paramsFor, parseStateAfter, rmmodStep, runStepSpec, setupStep, stateAfter } from '../../../scripts/lib/suite/test-plan.ts';

const T = { boot: 1, build: 600, load: 60, app: 60, command: 60 };
const m = { name: 'bebop_core', guestKo: '/root/kmodvm/driver/.kmodvm-guest/bebop_core.ko', params: ['debug=1'] };

t.test("the user's run line reaches sh -c as it is, from the suite root, after its shell writes its PID", async (t) => {
  const line = `./tools/ctl "a b" | grep -c 'x' && echo $HOME; exit 3`;
  const s = runStepSpec(line, 5);
  t.equal(s.argv.at(-1), line, 'the line is one argv element, never pasted into a script');
  t.same(s.argv.slice(0, 2), ['sh', '-c']);
  t.match(s.argv[2], /^printf %s "\$\$" > \/tmp\/kmodvm-run\.pid; exec sh -c "\$1"$/);
  t.equal(s.cwd, '/root/kmodvm');
  t.equal(s.timeoutMs, 5000);
  t.equal(s.failure, 'app');
});

t.test("insmod with params (the test's own for a module replace the dir's), rmmod by name", async (t) => {
  t.same(insmodStep(m, paramsFor(m, undefined), T).argv, ['insmod', m.guestKo, 'debug=1']);
  t.same(insmodStep(m, paramsFor(m, { bebop_core: ['name=rock steady'] }), T).argv, ['insmod', m.guestKo, 'name="rock steady"']);
  t.same(paramsFor(m, { other: ['x=1'] }), ['debug=1']);
  t.same(rmmodStep(m, T).argv, ['rmmod', 'bebop_core']);
  t.same(setupStep('mkdir -p /tmp/x && echo ok', 0, T).argv, ['sh', '-c', 'mkdir -p /tmp/x && echo ok']);
});

t.test('a state read with no PID yet (the command never ran), or none at all', async (t) => {
  t.same(parseStateAfter('\n12288\n[ 1.0] x\n'), { pid: undefined, taint: 12288, dmesg: '[ 1.0] x\n' });
  t.same(parseStateAfter(''), { pid: undefined, taint: undefined, dmesg: '' });
});

t.test("with --memcheck the state read after a test validates every slab first, so its reports land in that test's kernel log", async (t) => {
  const timeouts = { boot: 1, build: 1, load: 1, app: 1, command: 1 };
  t.match(stateAfter(timeouts, [VALIDATE_SLABS]).argv[2], /^for f in \/sys\/kernel\/slab\/\*\/validate; do echo 1 > "\$f"; done 2>\/dev\/null; .*dmesg -c$/);
  t.notMatch(stateAfter(timeouts).argv[2], /validate/);
});

t.test('a parameter with a space is quoted for the kernel: insmod joins its arguments (#29.6)', async (t) => {
  t.equal(kernelParam('card_label=Cam One'), 'card_label="Cam One"');
  t.equal(kernelParam('card_label="Cam One"'), 'card_label="Cam One"', 'already quoted: as it is');
  t.equal(kernelParam('debug=1'), 'debug=1');
  t.equal(kernelParam('exclusive_caps=1,1'), 'exclusive_caps=1,1');
});
