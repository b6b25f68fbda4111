// The teaching lab's grader: which sources an exercise uses, and how a run's
// checks become graded lines, a score and a hint. Pure; cli/commands/lab-check.ts
// runs it.
import type { CheckResult } from '../verdict/model.ts';

export interface Exercise {
  n: number;
  title: string;
  transcript: string;
  starter: { moduleDir: string; appDir: string };
  solution: { moduleDir: string; appDir: string };
  /** An exercise that is a suite (its devices, several tests): the starter's kmodvm.yaml and the solution's; transcript is then unused. */
  suite?: { starter: string; solution: string };
}

const ex = (n: number, slug: string, title: string, o: { starterApp?: string; solutionModule?: string; solutionApp?: string } = {}): Exercise => ({
  n,
  title,
  transcript: `docs/lab/exercises/${n}-${slug}/expected.transcript`,
  starter: { moduleDir: `docs/lab/exercises/${n}-${slug}/kernel-module`, appDir: o.starterApp ?? 'userapp' },
  solution: { moduleDir: o.solutionModule ?? `docs/lab/solutions/${n}-${slug}/kernel-module`, appDir: o.solutionApp ?? 'userapp' },
});

export const EXERCISES: readonly Exercise[] = [
  ex(1, 'reproduce', 'Reproduce the original exchange', { solutionModule: 'kernel-module' }),
  ex(2, 'echo', 'Echo the payload in upper case'),
  // The apps of exercises 3 and 4 are given, complete: starter and solution share them.
  ex(3, 'multicast', 'Multicast an event to two listeners', {
    starterApp: 'docs/lab/exercises/3-multicast/userapp',
    solutionApp: 'docs/lab/exercises/3-multicast/userapp',
  }),
  ex(4, 'genetlink', 'The echo as a generic netlink family', {
    starterApp: 'docs/lab/exercises/4-genetlink/userapp',
    solutionApp: 'docs/lab/exercises/4-genetlink/userapp',
  }),
  // A PCI driver with its device: a suite. The solution is kmodvm's own edu demo, whose suite has these tests and more.
  {
    ...ex(5, 'edu', "The edu PCI driver's interrupt handler and remove path"),
    suite: { starter: 'docs/lab/exercises/5-edu/kmodvm.yaml', solution: 'examples/edu/kmodvm.yaml' },
  },
];

export function findExercise(n: number): Exercise | undefined {
  return EXERCISES.find((e) => e.n === n);
}

export interface Grade {
  lines: { what: string; ok: boolean }[];
  score: number;
  outOf: number;
  hints: string[];
}

/** The checks named `name`, or `name <module>` (insmod, rmmod), exist and all passed. */
const passed = (checks: readonly CheckResult[], name: string): boolean => {
  const mine = checks.filter((c) => c.name === name || c.name.startsWith(`${name} `) || c.name.startsWith(`${name}:`));
  return mine.length > 0 && mine.every((c) => c.ok);
};
const failed = (checks: readonly CheckResult[], name: string): boolean => checks.some((c) => (c.name === name || c.name.startsWith(`${name} `)) && !c.ok);

/** One line per check a student cares about, a score, and hints that name the likely mistake. */
export function grade(checks: readonly CheckResult[]): Grade {
  const lines = [
    { what: 'built', ok: passed(checks, 'build-module') && passed(checks, 'build-app') },
    { what: 'loaded', ok: passed(checks, 'insmod') },
    { what: 'transcript', ok: passed(checks, 'transcript') },
    { what: 'no splat', ok: passed(checks, 'no-splat') && !checks.some((c) => c.name === 'taint' && !c.ok) },
    { what: 'unloaded', ok: passed(checks, 'rmmod') },
  ];
  const text = checks
    .filter((c) => !c.ok)
    .map((c) => `${c.message ?? ''}\n${c.evidence ?? ''}`)
    .join('\n');
  const hints: string[] = [];
  if (/missing MODULE_LICENSE/.test(text)) hints.push('MODULE_LICENSE is missing: a module must declare its licence, e.g. MODULE_LICENSE("Dual MIT/GPL").');
  if (/protocol \d+ is not served|EPROTONOSUPPORT/.test(text))
    hints.push(
      'the app found no kernel socket on its protocol: the module did not create it (netlink_kernel_create), is not loaded, or uses another protocol number than the app (31).',
    );
  if (/recvmsg\(\) timed out/.test(text))
    hints.push('no reply came back: the reply was never sent, or went to the wrong port. Send it to NETLINK_CB(skb).portid, not to the nlmsg_pid field.');
  if (/no event \(/.test(text))
    hints.push(
      "the listeners got no event: multicast it to the group with nlmsg_multicast(), and declare the kernel socket's groups (netlink_kernel_cfg.groups).",
    );
  if (/EDU_IOC_\w+: Connection timed out/.test(text))
    hints.push(
      "the device's interrupt was never handled: edu_irq() must read EDU_IRQ_STATUS, write those bits to EDU_IRQ_ACK, and complete the waiter (fact_done, dma_done).",
    );
  if (/__msi_domain_free_irqs|free_irq_vectors/.test(text) && /edu_remove/.test(text))
    hints.push('remove() freed the interrupt vectors with the handler still registered: call free_irq(edu->irq, edu) before pci_free_irq_vectors().');
  if (/Operation not supported/.test(text)) hints.push("the kernel answered EOPNOTSUPP: the command's handler does not build and send its reply yet.");
  if (failed(checks, 'insmod')) hints.push("the module did not load: the kernel's reason is in the evidence above (dmesg).");
  if (failed(checks, 'transcript') && hints.length === 0)
    hints.push('the output differs from the expected transcript: the diff above shows the first line that did not match.');
  if (checks.some((c) => (c.name === 'no-splat' || c.name === 'taint') && !c.ok))
    hints.push('the kernel complained (oops, BUG, WARNING or a new taint): the quoted splat above shows where.');
  if (checks.some((c) => c.failure === 'build') && hints.length === 0) hints.push('it does not compile: fix the first error shown above (file:line).');
  if (failed(checks, 'run') && hints.length === 0) hints.push('the app failed: its output above shows the step that went wrong.');
  const score = lines.filter((l) => l.ok).length;
  return { lines, score, outOf: lines.length, hints };
}

export function formatGrade(e: Exercise, g: Grade, solution: boolean): string {
  return [
    `exercise ${e.n}: ${e.title}${solution ? ' (reference solution)' : ''}`,
    ...g.lines.map((l) => `  ${l.ok ? '[x]' : '[ ]'} ${l.what}`),
    `score: ${g.score}/${g.outOf}`,
    ...g.hints.map((h) => `hint: ${h}`),
  ].join('\n');
}
