import t from 'tap';
import { EXERCISES, findExercise, formatGrade, grade } from '../../../scripts/lib/loop/lab.ts';
import type { CheckResult } from '../../../scripts/lib/verdict/model.ts';

const ok = (name: string): CheckResult => ({ name, ok: true, durationMs: 0 });
const all = ['build-module', 'build-app', 'insmod', 'app', 'rmmod', 'transcript', 'taint', 'no-splat'].map(ok);

t.test('a full pass scores 5/5 with no hint', async (t) => {
  const g = grade(all);
  t.equal(g.score, 5);
  t.same(g.hints, []);
  t.match(
    formatGrade(findExercise(1)!, g, true),
    /^exercise 1: Reproduce the original exchange \(reference solution\)\n  \[x\] built\n  \[x\] loaded\n  \[x\] transcript\n  \[x\] no splat\n  \[x\] unloaded\nscore: 5\/5$/,
  );
});

t.test('hints name the likely mistake', async (t) => {
  // modpost's own words (Debian 6.1 kbuild), from a real lab:check of the exercise 1 starter.
  const noLicense = grade([
    {
      name: 'build-module',
      ok: false,
      failure: 'build',
      durationMs: 0,
      evidence: 'ERROR: modpost: missing MODULE_LICENSE() in /w/kernel-module/netlink_simple_intf.o',
    },
    ok('no-splat'),
  ]);
  t.match(noLicense.hints[0], /MODULE_LICENSE is missing/);
  t.equal(noLicense.score, 1, 'only "no splat" holds');
  const wrongPort = grade([
    ...all.filter((c) => c.name !== 'app' && c.name !== 'transcript'),
    {
      name: 'app',
      ok: false,
      failure: 'app',
      durationMs: 0,
      evidence: './netlink_userapp: recvmsg() timed out: no reply from the kernel (is the module loaded?)',
    },
  ]);
  t.match(wrongPort.hints[0], /wrong port.*NETLINK_CB\(skb\)\.portid/);
  const noSocket = grade([
    ok('build-module'),
    ok('build-app'),
    ok('insmod'),
    {
      name: 'app',
      ok: false,
      failure: 'app',
      durationMs: 0,
      evidence: './netlink_userapp: socket(): protocol 31 is not served: is the netlink_simple_intf module loaded?',
    },
  ]);
  t.match(noSocket.hints[0], /no kernel socket on its protocol/);
  const noEvent = grade([
    ok('build-module'),
    ok('build-app'),
    ok('insmod'),
    { name: 'app', ok: false, failure: 'app', durationMs: 0, evidence: 'listener 1: no event (Resource temporarily unavailable)' },
  ]);
  t.match(noEvent.hints[0], /nlmsg_multicast/);
  const genl = grade([
    ok('build-module'),
    ok('build-app'),
    ok('insmod'),
    { name: 'app', ok: false, failure: 'app', durationMs: 0, evidence: "the kernel's answer failed: Operation not supported" },
  ]);
  t.match(genl.hints[0], /EOPNOTSUPP/);
  const other = grade([ok('build-module'), ok('build-app'), ok('insmod'), { name: 'run', ok: false, failure: 'app', durationMs: 0, evidence: 'segfault' }]);
  t.match(other.hints[0], /the app failed/);
  const notLoaded = grade([
    ok('build-module'),
    ok('build-app'),
    { name: 'insmod', ok: false, failure: 'load', durationMs: 0, evidence: 'insmod: ERROR: could not insert module' },
  ]);
  t.match(notLoaded.hints.join('\n'), /did not load/);
});

t.test('every exercise names its transcript, starter and solution', async (t) => {
  t.ok(EXERCISES.length >= 2);
  for (const e of EXERCISES) {
    t.match(e.transcript, new RegExp(`^docs/lab/exercises/${e.n}-`));
    t.not(e.starter.moduleDir, e.solution.moduleDir);
  }
});

t.test('exercise 5 (edu): the two mistakes of the starter each get their hint', async (t) => {
  const { readFileSync } = await import('node:fs');
  // The kernel's warning when remove() frees the MSI vectors under a registered handler: a real lab:check 5 of the starter.
  const splat = readFileSync(new URL('../../fixtures/lab/edu-starter-remove.dmesg', import.meta.url), 'utf8');
  const g = grade([
    ...all.filter((c) => !['app', 'no-splat', 'transcript'].includes(c.name)),
    { name: 'run', ok: false, failure: 'app', durationMs: 0, evidence: 'edu-app: EDU_IOC_FACT: Connection timed out' },
    { name: 'transcript', ok: false, failure: 'transcript', durationMs: 0 },
    { name: 'no-splat', ok: false, failure: 'splat', durationMs: 0, evidence: splat },
  ]);
  t.equal(g.score, 3);
  t.ok(
    g.hints.some((h) => /edu_irq\(\) must read EDU_IRQ_STATUS/.test(h)),
    'the handler',
  );
  t.ok(
    g.hints.some((h) => /call free_irq\(edu->irq, edu\) before pci_free_irq_vectors/.test(h)),
    'the remove path',
  );
  t.equal(findExercise(5)?.suite?.starter, 'docs/lab/exercises/5-edu/kmodvm.yaml');
});
