// Recorded guest kbuilds. Under TCG a guest `make` of the module costs ~50 s,
// about half of it kbuild's Makefile evaluation and compiler probes, which
// give the same answers for the same image every time. After a guest make
// succeeds, the files kbuild wrote about the build (.cmd files, .mod,
// modules.order) are fetched and kept on the host, keyed by the image and the
// module's shape (file names, and every file's contents but .c/.h). The next
// guest build of that shape, in a fresh VM, uploads them and runs the commands
// kbuild recorded (kbuild-replay.ts) in the guest, with the guest's own
// compiler and headers: every object is compiled again. Anything unexpected
// falls back to make. `--no-replay` (KMODVM_REPLAY=0) always runs make.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rename, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { z } from 'zod';
import { run } from '../core/proc.ts';
import type { SshSession } from '../guest/ssh.ts';
import { compilerDiagnostics, GUEST_WORK, judge, runStep, type StepRecord, type StepSpec } from '../guest/steps.ts';
import { shapeHash, treeReplayable } from './host-kbuild.ts';
import { loadReplayPlan } from './kbuild-replay.ts';

/** Where the guest builds the module. */
export const GUEST_MODULE_DIR = `${GUEST_WORK}/kernel-module`;

export interface GuestRecord {
  /** The kbuild tree make ran in (cd there to run the commands). */
  kdir: string;
  /** The recorded commands, in order. */
  plan: string[];
  /** The record's files as a tar archive, extracted into the module directory before the replay. */
  tar: Buffer;
}

/** The guest command that prints the record's files of a built module directory as a base64 tar stream. */
export function fetchRecordArgv(guestModuleDir: string): string[] {
  return [
    'sh',
    '-c',
    'cd "$1" && find . -type f \\( -name ".*.cmd" -o -name "*.mod" -o -name modules.order \\) -print0 | LC_ALL=C sort -z | tar -c --null -T - -f - | base64',
    'sh',
    guestModuleDir,
  ];
}

/** The kbuild tree a make ran in: the last "Entering directory" of its output that is not the module's own. */
export function kdirFromMakeOutput(stdout: string, guestModuleDir: string): string | undefined {
  const dirs = [...stdout.matchAll(/^make(?:\[\d+\])?: Entering directory '([^']+)'$/gm)].map((m) => m[1]).filter((d) => d !== guestModuleDir);
  return dirs.at(-1);
}

/**
 * The guest command that replays a record: extract its files (stdin) into the
 * module directory, then run each command from the kbuild tree, as kbuild's
 * `cmd` macro does (sh -e), stopping at the first that fails.
 */
export function guestReplayArgv(guestModuleDir: string, kdir: string, plan: readonly string[]): string[] {
  return [
    'sh',
    '-c',
    'tar -x --no-same-owner -f - -C "$1" && cd "$2" || exit; shift 2; for c do sh -e -c "$c" || exit; done',
    'sh',
    guestModuleDir,
    kdir,
    ...plan,
  ];
}

/** A failed replay is the user's compile error (reported as is) when the compiler blames a file in the module directory; anything else falls back to make. */
export function blamesModuleSource(output: string, guestModuleDir: string): boolean {
  return compilerDiagnostics(output).some((d) => d.severity !== 'warning' && d.file.startsWith(`${guestModuleDir}/`));
}

/** Turns a fetched record (base64 tar) into a replay: the plan from its files, as they sit under guestModuleDir in the guest. */
export async function recordFromFetched(base64: string, guestModuleDir: string, kdir: string, scratch: string): Promise<GuestRecord | undefined> {
  const tar = Buffer.from(base64, 'base64');
  const dir = await mkdtemp(path.join(scratch, 'kmodvm-record-'));
  try {
    const x = await run('tar', ['-x', '-f', '-', '-C', dir], { timeoutMs: 30_000, input: tar });
    if (x.exitCode !== 0) return undefined;
    // The guest's files name the paths: one outside its module dir (/dev/zero, a host file) is not read.
    const plan = await loadReplayPlan(guestModuleDir, { at: (p) => path.join(dir, path.relative(guestModuleDir, p)), root: dir });
    return plan ? { kdir, plan, tar } : undefined;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Keeps a record under dir (record.tar and meta.json), written to a temporary directory and renamed into place. */
export async function saveRecord(dir: string, r: GuestRecord): Promise<void> {
  if (existsSync(dir)) return;
  await mkdir(path.dirname(dir), { recursive: true });
  const tmp = await mkdtemp(`${dir}.tmp-`);
  try {
    await writeFile(path.join(tmp, 'record.tar'), r.tar);
    await writeFile(path.join(tmp, 'meta.json'), JSON.stringify({ kdir: r.kdir, plan: r.plan, recordedAt: new Date().toISOString() }, null, 2) + '\n');
    await rename(tmp, dir).catch(() => undefined); // another run got there first: theirs is as good
  } finally {
    await rm(tmp, { recursive: true, force: true });
  }
}

/** A record's meta.json. */
const recordMetaSchema = z.object({ kdir: z.string().min(1), plan: z.array(z.string()).min(1), recordedAt: z.string().optional() });

/** A record saved by saveRecord, or undefined when there is none or it does not read back whole. */
export async function loadRecord(dir: string): Promise<GuestRecord | undefined> {
  try {
    const meta = recordMetaSchema.safeParse(JSON.parse(await readFile(path.join(dir, 'meta.json'), 'utf8')));
    if (!meta.success) return undefined; // a record from another version, or a damaged one: make runs and records again
    const tar = await readFile(path.join(dir, 'record.tar'));
    return { kdir: meta.data.kdir, plan: meta.data.plan, tar };
  } catch {
    return undefined;
  }
}

/** The records of one image's guest kbuilds. */
export const guestRecordsRoot = (cacheDir: string): string => path.join(cacheDir, 'kbuild-records');
export const guestRecordsDir = (cacheDir: string, imageKey: string): string => path.join(guestRecordsRoot(cacheDir), imageKey);

export interface GuestBuildPlan {
  recordDir: string;
  record?: GuestRecord /** The module dir in the guest. */;
  guestDir: string;
}

/**
 * Where this module's record is kept (one directory per image, one per shape),
 * and the record itself when it exists and may be replayed.
 */
export async function guestBuildPlan(recordsDir: string, moduleDir: string, replay: boolean, guestDir = GUEST_MODULE_DIR, salt = ''): Promise<GuestBuildPlan> {
  const recordDir = path.join(recordsDir, await shapeHash(moduleDir, `guest\0${guestDir}${salt}`));
  const record = replay && (await treeReplayable(moduleDir)) ? await loadRecord(recordDir) : undefined;
  return { recordDir, record, guestDir };
}

/**
 * The guest's build-module step: the record replayed when there is one, else
 * (or when the replay fails for a reason other than the module's own code)
 * make, whose commands are then recorded for the next guest build.
 */
export async function buildModuleInGuest(session: SshSession, spec: StepSpec, g: GuestBuildPlan, log: (l: string) => void): Promise<StepRecord> {
  if (g.record) {
    const r = await session.exec(guestReplayArgv(g.guestDir, g.record.kdir, g.record.plan), { timeoutMs: spec.timeoutMs, stdin: g.record.tar });
    const rec = judge(spec, r);
    if (rec.ok) return { ...rec, message: `kbuild's recorded commands replayed in the guest (${g.record.plan.length}); make not run` };
    if (r.timedOut || blamesModuleSource(r.stdout + r.stderr, g.guestDir)) return rec;
    log(`build-module: the replay failed (${r.reason}) and the compiler blames no file of the module; running make`);
  }
  const rec = await runStep(session, spec);
  const kdir = rec.ok ? kdirFromMakeOutput(rec.result.stdout, g.guestDir) : undefined;
  if (kdir && !existsSync(g.recordDir)) {
    const f = await session.exec(fetchRecordArgv(g.guestDir), { timeoutMs: 60_000 });
    const record = f.exitCode === 0 ? await recordFromFetched(f.stdout, g.guestDir, kdir, os.tmpdir()) : undefined;
    if (record) {
      await saveRecord(g.recordDir, record);
      log(`build-module: kbuild's commands recorded for the next guest build of this module shape (${g.recordDir})`);
    }
  }
  return rec;
}
