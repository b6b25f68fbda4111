// Kernel splat detection: patterns are data (rules/splat.json), with an
// allow-list a project can extend. Lines are scanned without printk
// timestamps; a hit is quoted with the lines that follow it (the trace).
import { readFileSync } from 'node:fs';
import { z } from 'zod';
import { compiles, fieldName, parseData } from '../core/datafile.ts';
import { KmodvmError } from '../core/errors.ts';

export interface SplatRules {
  patterns: { id: string; regex: string }[];
  allow: string[];
}
export interface CompiledRules {
  patterns: { id: string; re: RegExp }[];
  allow: RegExp[];
}
export interface Splat {
  id: string;
  source: string;
  lineNo: number;
  line: string;
  excerpt: string[];
}

const HINT = 'fix the splat rules file: patterns is a list of { id, regex }, allow a list of regexes (rules/splat.json, docs/transcript.md)';

function regexError(s: string): string {
  try {
    new RegExp(s);
    return '';
  } catch (e) {
    return (e as Error).message;
  }
}

const regex = z
  .string()
  .min(1, 'must be a non-empty regex')
  .refine(compiles, { error: (i) => `bad regex ${JSON.stringify(i.input)}: ${regexError(String(i.input))}` });

/** One splat rules file: its own patterns and allow-list (a project's may have either alone). */
export const splatRulesSchema = z.strictObject({
  $comment: z.string().optional(),
  patterns: z.array(z.strictObject({ id: z.string().regex(/^[a-z0-9][a-z0-9-]*$/, 'must be a short lower-case id such as use-after-free'), regex })).optional(),
  allow: z.array(regex).optional(),
});

/** Compiles merged rules; a bad regex or an empty pattern list is bad input (exit 2). */
export function compileRules(r: SplatRules, file = 'splat rules'): CompiledRules {
  const checked = splatRulesSchema.safeParse(r);
  if (!checked.success) {
    const i = checked.error.issues[0];
    throw new KmodvmError('usage', `${file}: ${fieldName(i.path)}: ${i.message}`, { hint: HINT });
  }
  if (!Array.isArray(r.patterns) || r.patterns.length === 0)
    throw new KmodvmError('usage', `${file}: field \`patterns\` must be a non-empty list`, { hint: HINT });
  return { patterns: r.patterns.map((p) => ({ id: p.id, re: new RegExp(p.regex) })), allow: (r.allow ?? []).map((a) => new RegExp(a)) };
}

/** Reads the rule files, each validated on its own (file, line, field), merged in order. */
export function loadRules(files: string[]): CompiledRules {
  const merged: SplatRules = { patterns: [], allow: [] };
  for (const f of files) {
    let text: string;
    try {
      text = readFileSync(f, 'utf8');
    } catch (e) {
      throw new KmodvmError('usage', `cannot read the splat rules ${f} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, { hint: HINT });
    }
    const { value } = parseData(text, f, splatRulesSchema, HINT);
    merged.patterns.push(...(value.patterns ?? []));
    merged.allow.push(...(value.allow ?? []));
  }
  return compileRules(merged, files.join(', '));
}

// A printk record is at most 1 KiB (LOG_LINE_MAX); a longer line (a console flooded without newlines) is cut, so a project's own
// patterns run on bounded input.
export const strip = (l: string): string =>
  l
    .slice(0, 4096)
    .replace(/\r$/, '')
    .replace(/^\[\s*\d+\.\d+\]\s?/, '');

/** True for lines that continue a splat: registers, trace entries, markers. */
function continues(l: string): boolean {
  return /^\s|^(#PF:|PGD |P4D |Call Trace|RIP:|RSP:|RAX:|RDX:|RBP:|R\d+:|FS:|CS:|CR2:|Code:|Modules linked in|CPU:|Hardware name|Workqueue|---\[|<\/?(TASK|IRQ)>|Kernel Offset|Kernel panic|\? |[a-z_0-9.]+\+0x)/.test(
    l,
  );
}

/**
 * Where our own evidence starts: after a hung step the tool asks for a sysrq
 * task dump, whose call traces are not splats. A splat that caused the hang
 * was printed before it, so scanning stops there: only when kmodvm asked
 * for the dump (ownDump, a fact of the host's), since the code under test
 * can write the same line to /dev/kmsg to hide every splat after it.
 */
export const SYSRQ_DUMP = /sysrq: Show (Blocked State|State)/;

/** Every splat in a log, in order (up to our own sysrq dump, when there is one). Lines inside one splat's excerpt are not reported again. */
export function findSplats(log: string, rules: CompiledRules, source: string, o: { maxExcerpt?: number; ownDump?: boolean } = {}): Splat[] {
  const maxExcerpt = o.maxExcerpt ?? 40;
  const all = log.split('\n').map(strip);
  const cut = o.ownDump ? all.findIndex((l) => SYSRQ_DUMP.test(l)) : -1;
  const lines = cut >= 0 ? all.slice(0, cut) : all;
  const out: Splat[] = [];
  for (let i = 0; i < lines.length; i++) {
    const l = lines[i];
    const hit = rules.patterns.find((p) => p.re.test(l));
    if (!hit || rules.allow.some((a) => a.test(l))) continue;
    const excerpt = [l];
    let j = i + 1;
    while (j < lines.length && excerpt.length < maxExcerpt && (continues(lines[j]) || rules.patterns.some((p) => p.re.test(lines[j]))))
      excerpt.push(lines[j++]);
    out.push({ id: hit.id, source, lineNo: i + 1, line: l, excerpt });
    i = j - 1;
  }
  return out;
}

export function formatSplat(s: Splat): string {
  return [`${s.id} in ${s.source} line ${s.lineNo}:`, ...s.excerpt.map((l) => `  ${l}`)].join('\n');
}

/**
 * A splat in the guest kernel's own boot, before our init printed anything:
 * not the code under test (nothing of it is loaded yet) but the platform. One
 * seen here: Debian 6.12 under multi-threaded TCG, "Oops: int3" in
 * sched_clock_cpu while a static key is patched, about one boot in fifty.
 */
export function crashedBeforeInit(serial: string, rules: CompiledRules): Splat | undefined {
  if (/^kmodvm-init:/m.test(serial)) return undefined;
  return findSplats(serial, rules, 'serial.log')[0];
}
