// Data files (suites, recipes, splat rules, kept records) are parsed with
// zx's YAML, which reads JSON too, keeping line numbers, and validated with
// a zod schema that also gives their TypeScript types. An error names the
// file, the line and the field, and exits 2 (usage).

import type { z } from 'zod';
import { YAML } from 'zx';
import { KmodvmError } from './errors.ts';

export type Where = (at: readonly PropertyKey[]) => number | undefined;

export const fieldName = (at: readonly PropertyKey[]): string => at.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');

export function dataError(file: string, line: number | undefined, field: string, message: string, hint: string): KmodvmError {
  return new KmodvmError('usage', `${file}${line ? `:${line}` : ''}: ${field ? `${field}: ` : ''}${message}`, { hint });
}

type Doc = ReturnType<typeof YAML.parseDocument>;

/** The position of a map key on a path, when the last segment is a key. */
function findKey(doc: Doc, at: readonly PropertyKey[]): number | undefined {
  const parent: unknown = at.length > 1 ? doc.getIn(at.slice(0, -1) as unknown[], true) : doc.contents;
  if (!YAML.isMap(parent)) return undefined;
  const pair = (parent as InstanceType<typeof YAML.YAMLMap>).items.find(
    (p: { key: unknown }) => YAML.isScalar(p.key) && (p.key as InstanceType<typeof YAML.Scalar>).value === at.at(-1),
  );
  return (pair?.key as { range?: number[] } | undefined)?.range?.[0];
}

/** The keys an object schema knows at a path (through arrays, optionals and defaults). */
export function knownKeys(schema: z.ZodType, at: readonly PropertyKey[]): string[] {
  // biome-ignore lint/suspicious/noExplicitAny: zod's definitions are walked generically here
  let s: any = schema;
  const unwrap = (): void => {
    while (s?._zod?.def?.innerType) s = s._zod.def.innerType;
  };
  for (const k of at) {
    unwrap();
    if (typeof k === 'number') s = s?._zod?.def?.element;
    else s = s?._zod?.def?.shape?.[k];
  }
  unwrap();
  return Object.keys(s?._zod?.def?.shape ?? {});
}

/** Parses text (YAML or JSON) and validates it; returns the value and a line finder for later errors. */
export function parseData<S extends z.ZodType>(text: string, file: string, schema: S, hint: string): { value: z.infer<S>; where: Where } {
  const lc = new YAML.LineCounter();
  const kind = file.endsWith('.json') ? 'JSON' : 'YAML';
  // An alias bomb (yaml refuses past 100 aliases) or nesting too deep for the stack is bad input too, not a crash.
  const guarded = <T>(f: () => T): T => {
    try {
      return f();
    } catch (e) {
      throw dataError(file, undefined, '', `not valid ${kind}: ${(e as Error).message.split('\n')[0]}`, hint);
    }
  };
  const doc = guarded(() => YAML.parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true }));
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw dataError(file, lc.linePos(e.pos[0]).line, '', `not valid ${kind}: ${e.message.split('\n')[0]}`, hint);
  }
  const where: Where = (at) => {
    // The deepest node that exists on the path: an unknown key's own line, a missing key's parent.
    for (let n = at.length; n >= 0; n--) {
      const node = doc.getIn(at.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      const pos = (n > 0 ? findKey(doc, at.slice(0, n)) : undefined) ?? node?.range?.[0];
      if (pos !== undefined) return lc.linePos(pos).line;
    }
    return undefined;
  };
  const r = schema.safeParse(guarded(() => doc.toJS({ maxAliasCount: 100 })) ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const at = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
    const msg = issue.code === 'unrecognized_keys' ? `unknown field (known: ${knownKeys(schema, at.slice(0, -1)).join(', ')})` : issue.message;
    throw dataError(file, where(at), fieldName(at) || '(top level)', msg, hint);
  }
  return { value: r.data as z.infer<S>, where };
}

/** A zod refinement: the string compiles as a JavaScript regex. */
export const compiles = (s: string): boolean => {
  try {
    new RegExp(s);
    return true;
  } catch {
    return false;
  }
};
