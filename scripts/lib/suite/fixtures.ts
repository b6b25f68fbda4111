// A suite's fixtures (#25): the kernel's own test doubles (i2c-stub,
// scsi_debug, null_blk, mac80211_hwsim, dummy_hcd and a configfs gadget,
// vivid, vcan, uinput), named in qemu/fixtures.json. Each is modprobed with
// the suite's parameters before the suite's modules load, with the commands
// its entry says after (vcan0 up, the gadget bound); after the suite's
// modules and their in-tree dependencies are out, it is undone and removed,
// in reverse. A name the table lacks is bad input (exit 2); a module the
// booted kernel lacks is a load failure that says which kernels have it.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { z } from 'zod';
import type { Timeouts } from '../core/config.ts';
import { defaultRoot } from '../core/config.ts';
import { dataError, parseData, type Where } from '../core/datafile.ts';
import type { SshSession } from '../guest/ssh.ts';
import { runStep, type StepRecord, type StepSpec } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import { missingModuleHint, resultOf } from './in-tree-deps.ts';
import { kernelParam } from './test-plan.ts';

const moduleName = z.string().regex(/^[a-z0-9_]+$/, 'must be a module name as the kernel writes it (a-z, 0-9, _)');
const argv = z.array(z.string().min(1)).min(1);

export const fixtureTableSchema = z.strictObject({
  $comment: z.string().optional(),
  fixtures: z.record(
    z.string().regex(/^[a-z0-9][a-z0-9_-]*$/),
    z.strictObject({
      module: moduleName,
      about: z.string().min(1),
      required: z.array(z.string().regex(/^\w+$/)).default([]),
      also: z.array(moduleName).default([]),
      setup: z.array(argv).default([]),
      undo: z.array(argv).default([]),
    }),
  ),
});
export type FixtureTable = z.output<typeof fixtureTableSchema>['fixtures'];

export interface Fixture {
  /** The name the suite gave, as the table spells it. */
  name: string;
  module: string;
  params: string[];
  also: string[];
  setup: string[][];
  undo: string[][];
}

const tables = new Map<string, FixtureTable>();

/** qemu/fixtures.json of this checkout (or package), read once. */
export function loadFixtureTable(root = defaultRoot()): FixtureTable {
  const file = path.join(root, 'qemu', 'fixtures.json');
  let t = tables.get(file);
  if (!t) {
    t = parseData(readFileSync(file, 'utf8'), file, fixtureTableSchema, "qemu/fixtures.json is kmodvm's own: restore it from the package").value.fixtures;
    tables.set(file, t);
  }
  return t;
}

/** One suite entry: `i2c-stub chip_addr=0x50`, or {name, params}. */
export type FixtureEntry = string | { name: string; params?: string | string[] };

const PARAM = /^[A-Za-z_]\w*(=.*)?$/s;
const HINT = 'fixtures: names one of the test doubles in qemu/fixtures.json (docs/devices.md)';

/** The suite's fixtures, checked against the table: an unknown name, a bad or missing parameter, a repeat is exit 2 with the file, line and field. */
export function resolveFixtures(entries: readonly FixtureEntry[], table: FixtureTable, file: string, where: Where): Fixture[] {
  const seen = new Set<string>();
  return entries.map((e, i) => {
    const at = ['fixtures', i];
    const bad = (m: string): Error => dataError(file, where(at), `fixtures[${i}]`, m, HINT);
    const [name, ...rest] = typeof e === 'string' ? e.trim().split(/\s+/) : [e.name];
    const params = typeof e === 'string' ? rest : Array.isArray(e.params) ? e.params : (e.params ?? '').split(/\s+/).filter(Boolean);
    const key = name.replace(/_/g, '-');
    const found = table[name] ? name : Object.keys(table).find((k) => k.replace(/_/g, '-') === key);
    if (!found) throw bad(`unknown fixture ${JSON.stringify(name)}; kmodvm knows ${Object.keys(table).join(', ')}`);
    if (seen.has(found)) throw bad(`${found} is named twice`);
    seen.add(found);
    const f = table[found];
    const badParam = params.find((p) => !PARAM.test(p));
    if (badParam) throw bad(`${JSON.stringify(badParam)} is not a module parameter (name=value)`);
    const missing = f.required.filter((r) => !params.some((p) => p.split('=')[0] === r));
    if (missing.length)
      throw bad(`${found} needs ${missing.map((m) => `${m}=`).join(' ')} (for example: ${found} ${missing.map((m) => `${m}=0x50`).join(' ')})`);
    return { name: found, module: f.module, params, also: f.also, setup: f.setup, undo: f.undo };
  });
}

const ms = (s: number): number => Math.round(s * 1000);

/** The steps that set one fixture up: its module with the parameters, the modules it also needs, then its commands. */
export function fixtureSteps(f: Fixture, t: Timeouts): StepSpec[] {
  const step = (what: string, argv: string[]): StepSpec => ({ name: `fixture ${f.name}: ${what}`, argv, timeoutMs: ms(t.load), failure: 'load' });
  return [
    step(['modprobe', f.module, ...f.params].join(' '), ['modprobe', f.module, ...f.params.map(kernelParam)]),
    ...(f.also.length ? [step(`modprobe -a ${f.also.join(' ')}`, ['modprobe', '-a', ...f.also])] : []),
    ...f.setup.map((a, k) => step(`setup[${k}]`, a)),
  ];
}

/** The steps that take it down: its undo commands, then its modules out, the last loaded first. */
export function fixtureRemoveSteps(f: Fixture, t: Timeouts): StepSpec[] {
  const step = (what: string, argv: string[]): StepSpec => ({ name: `fixture ${f.name}: ${what}`, argv, timeoutMs: ms(t.load), failure: 'load' });
  const mods = [...[...f.also].reverse(), f.module];
  return [...f.undo.map((a, k) => step(`undo[${k}]`, a)), step(`modprobe -r ${mods.join(' ')}`, ['modprobe', '-r', ...mods])];
}

/** Sets the fixtures up, in order. On a kept guest (reuse) what an earlier cycle left is taken down first, quietly. */
export async function loadFixtures(session: SshSession, fixtures: readonly Fixture[], t: Timeouts, reuse: boolean) {
  const out = { ok: true, checks: [] as CheckResult[], records: [] as StepRecord[], loaded: [] as Fixture[] };
  if (reuse && fixtures.length) {
    const quiet = [...fixtures].reverse().flatMap((f) => fixtureRemoveSteps(f, t));
    for (const s of quiet) await session.execKept(s.argv, { timeoutMs: s.timeoutMs }).catch(() => undefined);
  }
  for (const f of fixtures) {
    for (const [k, s] of fixtureSteps(f, t).entries()) {
      const r = await runStep(session, s);
      out.records.push(r);
      const said = r.result.stderr.trim().split('\n').at(-1) ?? '';
      // The step's name has the parameters already; a failed load says what the kernel lacks.
      const why = r.ok
        ? undefined
        : k === 0
          ? `this kernel has no ${f.module} for the fixture ${f.name} (modprobe: ${said}); ${missingModuleHint()}`
          : undefined;
      out.checks.push(resultOf(r, why));
      if (!r.ok) {
        // What came up of this fixture goes down again with the others.
        if (k > 0) out.loaded.push(f);
        return { ...out, ok: false };
      }
    }
    out.loaded.push(f);
  }
  return out;
}

/** After the run: each fixture loadFixtures set up, the last first. A module still in use (a reference the suite's driver leaked) fails. */
export async function unloadFixtures(session: SshSession, loaded: readonly Fixture[], t: Timeouts, record: (r: StepRecord) => Promise<void>) {
  const checks: CheckResult[] = [];
  for (const f of [...loaded].reverse())
    for (const s of fixtureRemoveSteps(f, t)) {
      const r = await runStep(session, s);
      await record(r);
      checks.push(resultOf(r));
    }
  return checks;
}
