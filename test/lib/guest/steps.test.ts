import t from 'tap';
import type { ExecResult } from '../../../scripts/lib/guest/ssh.ts';
import { compilerDiagnostics, judge, mapGuestPaths, type StepSpec } from '../../../scripts/lib/guest/steps.ts';
import { execResult } from '../../helpers/exec-result.ts';

const res = (o: Partial<ExecResult> = {}): ExecResult => execResult({ durationMs: 1, ...o });
const insmod: StepSpec = { name: 'insmod m', argv: ['insmod', '/root/kmodvm/m/m.ko'], timeoutMs: 60_000, failure: 'load' };

t.test('a non-zero exit takes the step class; a timeout is its own class', async (t) => {
  t.equal(judge(insmod, res({})).ok, true);
  t.equal(judge(insmod, res({ exitCode: 1, reason: 'exited 1' })).failure, 'load');
  t.equal(judge(insmod, res({ exitCode: undefined, timedOut: true, reason: 'timed out after 60 s' })).failure, 'timeout');
});

t.test('compiler errors are mapped back to host paths', async (t) => {
  // Real gcc output from a guest build of a module with a typo.
  const out = `/root/kmodvm/kernel-module/netlink_simple_intf.c:168:9: error: 'nlsok' undeclared (first use in this function); did you mean 'nlsock'?
  168 |         nlsok = netlink_kernel_create(&init_net, protocol, &cfg);
/root/kmodvm/kernel-module/netlink_simple_intf.c:168:9: note: each undeclared identifier is reported only once for each function it appears in
make[2]: *** [/usr/src/linux-headers-6.1.0-56-common/scripts/Makefile.build:250: /root/kmodvm/kernel-module/netlink_simple_intf.o] Error 1`;
  const mapped = mapGuestPaths(out, '/root/kmodvm/kernel-module', '/home/me/kernel-module');
  const d = compilerDiagnostics(mapped);
  t.same(d, [
    {
      file: '/home/me/kernel-module/netlink_simple_intf.c',
      line: 168,
      col: 9,
      severity: 'error',
      message: "'nlsok' undeclared (first use in this function); did you mean 'nlsock'?",
    },
  ]);
});

t.test(
  "the code under test runs on an exec channel of its own, kmodvm's own steps on kept shells (#24: a test forged its exit code on the shared shell)",
  async (t) => {
    const { runStep } = await import('../../../scripts/lib/guest/steps.ts');
    const { runStepSpec, setupStep, stateAfter } = await import('../../../scripts/lib/suite/test-plan.ts');
    const used: string[] = [];
    const session = {
      exec: async () => {
        used.push('exec');
        return res({});
      },
      execKept: async () => {
        used.push('kept');
        return res({});
      },
    } as unknown as Parameters<typeof runStep>[0];
    const timeouts = { boot: 1, build: 1, app: 1, command: 1 } as Parameters<typeof setupStep>[2];
    for (const spec of [runStepSpec('./app', 5), setupStep('mkdir -p x', 0, timeouts), stateAfter(timeouts)]) await runStep(session, spec);
    t.same(used, ['exec', 'exec', 'kept']);
  },
);
