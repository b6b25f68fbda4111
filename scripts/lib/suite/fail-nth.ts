// --fail-nth K: each module's load with its N-th allocation made to fail, for
// N = 1, 2, … until the load makes fewer than N allocations (or K), one after
// another on the guest; the modules before it in the suite are loaded first
// (it may use their symbols). Each N is a report of its own, judged by
// verdict/fail-nth.ts: a splat or a leak on the error path fails it. A splat
// ends the module's sweep: the kernel can no longer be trusted.
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { runStep, type StepRecord } from '../guest/steps.ts';
import { DMESG_MARK, TRACES_MARK, judgeNth, parseNth } from '../verdict/fail-nth.ts';
import { newTraces, parseAllocTraces, type TraceEntry } from '../verdict/leaks.ts';
import { confirmTraces } from './memcheck.ts';
import { worstOf, type Check, type TestReport } from '../verdict/report.ts';
import { failNthStep, failNthToolStep, insmodStep, leakScanStep, rmmodStep, type LoadedModule } from './test-plan.ts';
import type { Guest, SuiteRunInput } from './types.ts';

type Record = (r: StepRecord) => Promise<void>;

const testReport = (name: string, checks: Check[]): TestReport => {
  const w = worstOf(checks);
  return { name, ok: !w, failure: w, durationMs: checks.reduce((a, c) => a + c.durationMs, 0), checks };
};

const stepCheck = (r: StepRecord): Check => ({
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
    out.tests.push(testReport('fail-nth', [stepCheck(tool)]));
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

/** One module's sweep; returns why the kernel is no longer trusted, if it is not. */
async function sweep(i: SuiteRunInput, guest: Guest, m: LoadedModule, record: Record, out: FailNthResult): Promise<string | undefined> {
  const t = i.c.timeouts;
  const scan = await runStep(guest.session, leakScanStep(t));
  await record(scan);
  let before: TraceEntry[] = parseAllocTraces(scan.result.stdout);
  for (let n = 1; n <= i.c.failNth; n++) {
    const r = await runStep(guest.session, failNthStep(m, n, m.params, t, { traces: TRACES_MARK, dmesg: DMESG_MARK }));
    await record(r);
    if (!r.ok) {
      out.tests.push(testReport(`fail-nth ${m.name} N=${n}`, [stepCheck(r)]));
      return `${r.name}: ${r.message ?? r.result.reason}`;
    }
    const o = parseNth(n, r.result.stdout);
    out.kernelLog += o.dmesg;
    if (!o.injected) {
      i.log(`fail-nth ${m.name}: the load makes ${n - 1} allocations; each failed in turn`);
      out.tests.push(
        testReport(`fail-nth ${m.name} done`, [
          { name: 'sweep', ok: true, durationMs: 0, message: `N=1..${n - 1}: every allocation of the load failed once; N=${n} was not reached` },
        ]),
      );
      return undefined;
    }
    const added = newTraces(before, o.traces);
    // KASAN's quarantine holds what the error path freed: only what stays after the caches are shrunk is left behind.
    if (added.length) {
      const again = await confirmTraces(guest, [...new Set(added.map((x) => x.cache))], t, record);
      const caches = new Set(added.map((x) => x.cache));
      o.traces = [...o.traces.filter((x) => !caches.has(x.cache)), ...again];
    }
    const checks = judgeNth(o, before, i.rules, m.name);
    out.tests.push(testReport(`fail-nth ${m.name} N=${n}`, checks));
    i.log(
      `fail-nth ${m.name} N=${n}: ${
        checks
          .filter((c) => !c.ok)
          .map((c) => c.message)
          .join('; ') || checks[0].message
      }`,
    );
    before = o.traces;
    const splat = checks.find((c) => c.name === 'no-splat' && !c.ok);
    if (splat) return splat.message;
  }
  i.log(`fail-nth ${m.name}: stopped at N=${i.c.failNth} (--fail-nth); the load makes more allocations`);
  return undefined;
}
