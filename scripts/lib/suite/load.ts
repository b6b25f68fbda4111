// Reads a suite file: YAML (zx's parser) checked against the schema, then
// against the file system (dirs with a Makefile, transcripts that exist).
// Every error names the file, the line and the field, and exits 2 (usage)
// before anything boots.
import { existsSync, statSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { YAML } from 'zx';
import { KmodvmError } from '../core/errors.ts';
import { suiteSchema, type SuiteFile } from './schema.ts';

export interface SuiteModuleDir {
  dir: string;
  abs: string;
  params: string[];
}
export interface SuiteTest {
  name: string;
  run: string;
  /** The transcript, relative to the root and absolute; absent when the test names none. */
  transcript?: { rel: string; abs: string };
  exitCode: number;
  timeoutS?: number;
  /** insmod parameters by module name, replacing the dir's. */
  params?: Record<string, string[]>;
}
export interface Suite {
  file: string;
  root: string;
  modules: SuiteModuleDir[];
  apps: { dir: string; abs: string }[];
  tests: SuiteTest[];
  setup: string[];
  load: 'per-test' | 'once';
  kernelArgs: string[];
  kernels?: string[];
  exclude: string[];
  /**
   * A --module-dir suite: its dirs live anywhere on the host, and appear in
   * the suite (and the guest) under fixed names. Without mounts, the root's
   * files are the suite's.
   */
  mounts?: { rel: string; abs: string }[];
}

/** Where a suite path is on the host. */
export function srcPath(s: Pick<Suite, 'root' | 'mounts'>, rel: string): string {
  const m = s.mounts?.find((x) => rel === x.rel || rel.startsWith(`${x.rel}/`));
  return m ? path.join(m.abs, rel.slice(m.rel.length)) : path.join(s.root, rel);
}

/** Text that names files under base (the build tree, the guest's copy) with the host's own paths instead. */
export function hostPaths(s: Pick<Suite, 'root' | 'mounts'>, text: string, base: string): string {
  let out = text;
  for (const m of s.mounts ?? []) out = out.split(`${base}/${m.rel}/`).join(`${m.abs}/`);
  return out.split(`${base}/`).join(s.root === '/' ? '/' : `${s.root}/`);
}

export const paramList = (p: string | string[] | undefined): string[] => (p === undefined ? [] : Array.isArray(p) ? p : p.split(/\s+/).filter(Boolean));

type Where = (at: readonly PropertyKey[]) => number | undefined;

function usage(file: string, line: number | undefined, field: string, message: string, hint?: string): KmodvmError {
  return new KmodvmError('usage', `${file}${line ? `:${line}` : ''}: ${field ? `${field}: ` : ''}${message}`, {
    hint: hint ?? 'fix the suite file; its fields are in docs/suite.md and schema/kmodvm.schema.json',
  });
}

export const fieldName = (at: readonly PropertyKey[]): string => at.map((k, i) => (typeof k === 'number' ? `[${k}]` : `${i ? '.' : ''}${String(k)}`)).join('');

/** Parses and validates the text of a suite file (pure but for the file name it quotes). */
export function parseSuiteText(text: string, file: string): { suite: SuiteFile; where: Where } {
  const lc = new YAML.LineCounter();
  const doc = YAML.parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true });
  if (doc.errors.length) {
    const e = doc.errors[0];
    throw usage(file, lc.linePos(e.pos[0]).line, '', `not valid YAML: ${e.message.split('\n')[0]}`);
  }
  const where: Where = (at) => {
    // The deepest node that exists on the path: an unknown key's own line, a missing key's parent.
    for (let n = at.length; n >= 0; n--) {
      const node = doc.getIn(at.slice(0, n) as unknown[], true) as { range?: [number, number, number] } | undefined;
      const pair = n > 0 ? findKey(doc, at.slice(0, n)) : undefined;
      const pos = pair ?? node?.range?.[0];
      if (pos !== undefined) return lc.linePos(pos).line;
    }
    return undefined;
  };
  const r = suiteSchema.safeParse(doc.toJS() ?? {});
  if (!r.success) {
    const issue = r.error.issues[0];
    const at = issue.code === 'unrecognized_keys' ? [...issue.path, issue.keys[0]] : issue.path;
    const msg = issue.code === 'unrecognized_keys' ? `unknown field (known: ${knownKeys(at.slice(0, -1))})` : issue.message;
    throw usage(file, where(at), fieldName(at) || '(top level)', msg);
  }
  return { suite: r.data, where };
}

/** The position of a map key on a path, when the last segment is a key. */
function findKey(doc: ReturnType<typeof YAML.parseDocument>, at: readonly PropertyKey[]): number | undefined {
  const parent: unknown = at.length > 1 ? doc.getIn(at.slice(0, -1) as unknown[], true) : doc.contents;
  if (!YAML.isMap(parent)) return undefined;
  const pair = (parent as InstanceType<typeof YAML.YAMLMap>).items.find(
    (p: { key: unknown }) => YAML.isScalar(p.key) && (p.key as InstanceType<typeof YAML.Scalar>).value === at.at(-1),
  );
  return (pair?.key as { range?: number[] } | undefined)?.range?.[0];
}

function knownKeys(parent: readonly PropertyKey[]): string {
  const depth = parent.filter((k) => typeof k === 'string');
  const keys: Record<string, string[]> = {
    '': ['modules', 'apps', 'tests', 'setup', 'load', 'kernel_args', 'kernels', 'exclude'],
    modules: ['dir', 'params'],
    apps: ['dir'],
    tests: ['name', 'run', 'transcript', 'exit_code', 'timeout', 'params'],
  };
  return (keys[depth.join('.')] ?? []).join(', ');
}

/** Reads, validates and resolves a suite file. With update, a transcript may be missing (--update writes it). */
export async function loadSuite(file: string, o: { update?: boolean } = {}): Promise<Suite> {
  const abs = path.resolve(file);
  const text = await readFile(abs, 'utf8').catch((e: NodeJS.ErrnoException) => {
    throw new KmodvmError('usage', `cannot read the suite file ${abs} (${e.code ?? e.message})`, {
      hint: 'pass --suite FILE, or write a kmodvm.yaml (docs/suite.md)',
    });
  });
  const { suite: s, where } = parseSuiteText(text, abs);
  const root = path.dirname(abs);
  const dirOf = (kind: 'modules' | 'apps', i: number, dir: string): string => {
    const d = path.resolve(root, dir);
    if (!existsSync(d) || !statSync(d).isDirectory()) throw usage(abs, where([kind, i, 'dir']), `${kind}[${i}].dir`, `no directory ${d}`);
    if (!['Makefile', 'makefile', 'GNUmakefile', 'Kbuild'].some((m) => existsSync(path.join(d, m))))
      throw usage(abs, where([kind, i, 'dir']), `${kind}[${i}].dir`, `${d} has no Makefile`);
    return d;
  };
  const tests = s.tests.map((t, i): SuiteTest => {
    const tr = t.transcript ? { rel: t.transcript, abs: path.resolve(root, t.transcript) } : undefined;
    if (tr && !o.update && !existsSync(tr.abs)) {
      throw usage(
        abs,
        where(['tests', i, 'transcript']),
        `tests[${i}].transcript`,
        `no file ${tr.abs}`,
        'write it, or run once with --update to write it from what the test prints',
      );
    }
    return {
      name: t.name,
      run: t.run,
      transcript: tr,
      exitCode: t.exit_code,
      timeoutS: t.timeout,
      params: t.params && Object.fromEntries(Object.entries(t.params).map(([k, v]) => [k.replace(/-/g, '_'), paramList(v)])),
    };
  });
  return {
    file: abs,
    root,
    modules: s.modules.map((m, i) => ({ dir: m.dir, abs: dirOf('modules', i, m.dir), params: paramList(m.params) })),
    apps: s.apps.map((a, i) => ({ dir: a.dir, abs: dirOf('apps', i, a.dir) })),
    tests,
    setup: s.setup,
    load: s.load,
    kernelArgs: Array.isArray(s.kernel_args) ? s.kernel_args : paramList(s.kernel_args),
    kernels: s.kernels,
    exclude: s.exclude,
  };
}
