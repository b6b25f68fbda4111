// --fail-nth K: each module's load with its N-th allocation made to fail, for
// the last K allocations of the load (counted by a first load that fails
// nothing: the module's own init makes the last ones, after the loader's),
// one after another on the guest; the modules before it in the suite are loaded first
// (it may use their symbols). Each N is a report of its own, judged by
// verdict/fail-nth.ts: a splat or a leak on the error path fails it. A splat
// ends the module's sweep: the kernel can no longer be trusted.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import type { Guest } from '../guest/steps.ts';
import { runStep, type StepRecord } from '../guest/steps.ts';
import { DMESG_MARK, judgeNth, parseNth, TRACES_MARK } from '../verdict/fail-nth.ts';
import { newTraces, type TraceEntry } from '../verdict/leaks.ts';
import { type CheckResult, type TestReport, testReport } from '../verdict/model.ts';
import { confirmTraces } from './checks/leak-check.ts';
import { failNthStep, failNthToolStep, insmodStep, type LoadedModule, rmmodStep } from './test-plan.ts';
import type { SuiteRunInput } from './types.ts';

type Record = (r: StepRecord) => Promise<void>;

const reportOf = (name: string, checks: CheckResult[]): TestReport =>
  testReport(
    name,
    checks,
    checks.reduce((a, c) => a + c.durationMs, 0),
  );

const stepCheck = (r: StepRecord): CheckResult => ({
  name: r.name,
  ok: r.ok,
  failure: r.failure,
  durationMs: r.result.durationMs,
  message: r.message,
  evidence: r.ok ? undefined : `${r.result.stdout}\n${r.result.stderr}`.trim(),
});

export interface FailNthResult {
  tests: TestReport[];
  kernelLog: string;
  untrusted?: string;
}

export async function runFailNth(i: SuiteRunInput, guest: Guest, modules: readonly LoadedModule[], record: Record): Promise<FailNthResult> {
  const out: FailNthResult = { tests: [], kernelLog: '' };
  const source = await readFile(path.join(i.c.root, 'qemu/guest-tools/kmodvm-fail-nth.c'), 'utf8');
  const tool = await runStep(guest.session, failNthToolStep(source, i.c.timeouts));
  await record(tool);
  if (!tool.ok) {
    out.tests.push(reportOf('fail-nth', [stepCheck(tool)]));
    return out;
  }
  for (const [k, m] of modules.entries()) {
    const deps = modules.slice(0, k);
    for (const d of deps) await record(await runStep(guest.session, insmodStep(d, d.params, i.c.timeouts)));
    out.untrusted = await sweep(i, guest, m, record, out);
    for (const d of [...deps].reverse()) await record(await runStep(guest.session, rmmodStep(d, i.c.timeouts)));
    if (out.untrusted) break;
  }
  return out;
}

/** A load with an N it never reaches: how many allocations the whole load makes (the loader's, then the init's). */
const COUNTING_N = 1_000_000;

/** One module's sweep over the last K allocations of its load; returns why the kernel is no longer trusted, if it is not. */
async function sweep(i: SuiteRunInput, guest: Guest, m: LoadedModule, record: Record, out: FailNthResult): Promise<string | undefined> {
  const t = i.c.timeouts;
  const marks = { traces: TRACES_MARK, dmesg: DMESG_MARK };
  const count = await runStep(guest.session, failNthStep(m, COUNTING_N, m.params, t, marks));
  await record(count);
  const c = parseNth(COUNTING_N, count.result.stdout);
  if (!count.ok || c.injected || c.left === undefined || !c.loaded) {
    out.tests.push(
      reportOf(`fail-nth ${m.name}`, [{ ...stepCheck(count), ok: false, failure: 'load', message: `the counting load of ${m.name} failed: ${c.head}` }]),
    );
    return undefined;
  }
  const total = COUNTING_N - c.left;
  const from = Math.max(1, total - i.c.failNth + 1);
  i.log(`fail-nth ${m.name}: the load makes ${total} allocations; failing N=${from}..${total} in turn (the module's own init makes the last ones)`);
  let before: TraceEntry[] = c.traces;
  // Two loads of one module need not make the same number of allocations (a cache filled by the first): go on until N is not reached.
  for (let n = from; n <= total + i.c.failNth; n++) {
    const r = await runStep(guest.session, failNthStep(m, n, m.params, t, marks));
    await record(r);
    if (!r.ok) {
      out.tests.push(reportOf(`fail-nth ${m.name} N=${n}`, [stepCheck(r)]));
      return `${r.name}: ${r.message ?? r.result.reason}`;
    }
    const o = parseNth(n, r.result.stdout);
    out.kernelLog += o.dmesg;
    if (!o.injected) {
      const message = `N=${from}..${n - 1} of the load's ${total} allocations failed in turn; N=${n} was not reached`;
      out.tests.push(reportOf(`fail-nth ${m.name} done`, [{ name: 'sweep', ok: true, durationMs: 0, message }]));
      return undefined;
    }
    const added = newTraces(before, o.traces);
    // KASAN's quarantine holds what the error path freed: only what stays after the caches are shrunk is left behind.
    if (added.length) {
      const caches = new Set(added.map((x) => x.cache));
      const again = await confirmTraces(guest, [...caches], t, record);
      o.traces = [...o.traces.filter((x) => !caches.has(x.cache)), ...again];
    }
    const checks = judgeNth(o, before, i.rules, m.name);
    out.tests.push(reportOf(`fail-nth ${m.name} N=${n}`, checks));
    i.log(
      `fail-nth ${m.name} N=${n}: ${
        checks
          .filter((x) => !x.ok)
          .map((x) => x.message)
          .join('; ') || checks[0].message
      }`,
    );
    before = o.traces;
    const splat = checks.find((x) => x.name === 'no-splat' && !x.ok);
    if (splat) return splat.message;
  }
  const message = `the load made more than ${total + i.c.failNth} allocations, ${i.c.failNth} more than the ${total} counted`;
  out.tests.push(reportOf(`fail-nth ${m.name} done`, [{ name: 'sweep', ok: false, failure: 'load', durationMs: 0, message }]));
  return undefined;
}
