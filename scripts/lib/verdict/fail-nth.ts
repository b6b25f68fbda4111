// --fail-nth, pure: what one N of the sweep gave, and its verdict. The guest
// step (suite/fail-nth-sweep.ts) loads the module with its N-th allocation failed,
// unloads it when it loaded, lists the allocation sites the kernel can no
// longer name (code since unloaded), then the kernel log. An N fails on a
// splat other than the injection's own report, or on objects left behind by
// the module's error path: sites that were not there before this N.

import { newTraces, parseAllocTraces, type TraceEntry } from './leaks.ts';
import type { CheckResult } from './model.ts';
import { type CompiledRules, findSplats, formatSplat, strip } from './splat.ts';

export const TRACES_MARK = '@@kmodvm-traces';
export const DMESG_MARK = '@@kmodvm-dmesg';

export interface NthOutcome {
  n: number;
  /** The N-th allocation was made, and failed; false: the load made fewer (the sweep is done). */
  injected: boolean;
  /** What remained of N after the load: N minus the load's allocations, when not reached. */
  left?: number;
  loaded: boolean;
  errno?: number;
  head: string;
  traces: TraceEntry[];
  dmesg: string;
}

export function parseNth(n: number, stdout: string): NthOutcome {
  const t = stdout.indexOf(`${TRACES_MARK}\n`);
  const d = stdout.indexOf(`${DMESG_MARK}\n`);
  const head = t < 0 ? stdout : stdout.slice(0, t);
  const line = /fail-nth: N=\d+ (injected|not-reached) init_module=(-?\d+) errno=(\d+)(?: left=(\d+))?/.exec(head);
  return {
    n,
    injected: line?.[1] === 'injected',
    loaded: line?.[2] === '0',
    errno: line ? Number(line[3]) : undefined,
    left: line?.[4] === undefined ? undefined : Number(line[4]),
    head: head.trim(),
    traces: t < 0 ? [] : parseAllocTraces(stdout.slice(t, d < 0 ? undefined : d)),
    dmesg: d < 0 ? '' : stdout.slice(d + DMESG_MARK.length + 1),
  };
}

const INJECTION = 'FAULT_INJECTION: forcing a failure';
/** What the kernel says of an allocation that failed (warn_alloc): the expected sequel of an injected failure, not a bug. */
const FAILED_ALLOC = /: (vmalloc error|page allocation failure): /;
const expected = (l: string): boolean => l.includes(INJECTION) || FAILED_ALLOC.test(l);

/**
 * The kernel log without the injection's own reports (its line, its
 * parameters, its stack dump) and the allocator's warnings that follow a
 * failed allocation, and the injection reports. An allocation that asked for
 * __GFP_NOWARN fails without a report.
 */
export function splitInjections(dmesg: string): { rest: string; injections: string[][] } {
  const lines = dmesg.split('\n');
  const rest: string[] = [];
  const injections: string[][] = [];
  for (let k = 0; k < lines.length; k++) {
    if (!expected(lines[k])) {
      rest.push(lines[k]);
      continue;
    }
    const block = [lines[k]];
    // dump_stack()'s trace ends with </TASK>; without it (verbose=1) the block is its two lines.
    const end = lines.findIndex((l, j) => j > k && l.includes('</TASK>'));
    const stop = end > k && end - k < 120 ? end : Math.min(k + 1, lines.length - 1);
    for (let j = k + 1; j <= stop; j++) block.push(lines[j]);
    if (lines[k].includes(INJECTION)) injections.push(block);
    k = stop;
  }
  return { rest: rest.join('\n'), injections };
}

/** The allocation machinery a failed allocation's trace starts with; the first frame past it is the caller that asked. */
const MACHINERY =
  /^(dump_stack|should_fail|should_failslab|fail_dump|slab_pre_alloc_hook|kmem_cache_alloc|__kmem_cache_alloc|__kmalloc|kmalloc|kmemdup|kstrdup|kzalloc|krealloc|kvmalloc|__do_kmalloc|slab_alloc)[\w.]*\+/;

/** The frames of an injection's stack, past the allocator; "? f" (a word on the stack the unwinder could not vouch for) left out. */
function callers(block: readonly string[]): string[] {
  const trace = block.findIndex((l) => l.includes('Call Trace:'));
  if (trace < 0) return [];
  return block
    .slice(trace + 1)
    .map((raw) => strip(raw).trim())
    .filter((l) => l && !l.startsWith('<') && !l.startsWith('? ') && !l.includes(': ') && !MACHINERY.test(l));
}

/** Where the failed allocation was asked for: the first frame of its stack past the allocator, and the first of a module, when it is another. */
export function injectionSite(block: readonly string[]): string | undefined {
  const frames = callers(block);
  if (!frames.length) return undefined;
  const mod = frames.find((f) => / \[\w+\]$/.test(f));
  return mod && mod !== frames[0] ? `${frames[0]}, from ${mod}` : frames[0];
}

/** The checks of one N. */
export function judgeNth(o: NthOutcome, before: readonly TraceEntry[], rules: CompiledRules, module: string): CheckResult[] {
  const { rest, injections } = splitInjections(o.dmesg);
  const site = injections[0] && injectionSite(injections[0]);
  const what = `N=${o.n}: the ${ordinal(o.n)} allocation of the load failed${site ? `, at ${site}` : injections.length ? '' : ' (silently: it asked for __GFP_NOWARN)'}`;
  const load: CheckResult = {
    name: 'load',
    ok: true,
    durationMs: 0,
    message: `${what}; ${module} ${o.loaded ? 'loaded anyway' : `was refused (errno ${o.errno})`}`,
  };
  const splats = findSplats(rest, rules, 'dmesg');
  const splat: CheckResult = splats.length
    ? {
        name: 'no-splat',
        ok: false,
        failure: 'splat',
        durationMs: 0,
        splatId: splats[0].id,
        message: `${splats[0].id} on the error path: ${splats[0].line}`,
        evidence: `${what}\n${formatSplat(splats[0])}`,
      }
    : { name: 'no-splat', ok: true, durationMs: 0 };
  const left = newTraces(before, o.traces);
  const leak: CheckResult = left.length
    ? {
        name: 'no-leak',
        ok: false,
        failure: 'splat',
        durationMs: 0,
        splatId: 'memcheck-leak',
        message: `leak on the error path: ${left.map((t) => `${t.count} object${t.count === 1 ? '' : 's'} of ${t.cache} allocated at 0x${t.addr.toString(16)}`).join('; ')}, still allocated after the failed load`,
        evidence: `${what}\n${left.map((t) => `${t.cache}: ${t.count} at 0x${t.addr.toString(16)} (${t.detail})`).join('\n')}`,
      }
    : { name: 'no-leak', ok: true, durationMs: 0 };
  return [load, splat, leak];
}

const ordinal = (n: number): string => `${n}${n % 100 >= 11 && n % 100 <= 13 ? 'th' : (['th', 'st', 'nd', 'rd'][n % 10] ?? 'th')}`;
