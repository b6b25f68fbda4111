// Readies a guest for a suite's tests: upload the suite root (with the host
// build's products), build in the guest when the host did not, unload what
// an earlier cycle left loaded, run the setup commands, and with
// `load: once` load the modules. Run again on every fresh guest.
import { createHash } from 'node:crypto';
import type { Config } from '../core/config.ts';
import type { SshSession } from '../guest/ssh.ts';
import { GUEST_WORK, runStep, type StepRecord } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import type { DeviceChannel } from './device-channel.ts';
import type { GuestDevices } from './devices-plug.ts';
import { type Fixture, loadFixtures } from './fixtures.ts';
import { guestBuildSuite } from './guest-build.ts';
import type { SuiteHostBuild } from './host-build.ts';
import { loadInTreeDeps } from './in-tree-deps.ts';
import type { Suite } from './load.ts';
import { orderByDepends } from './load-order.ts';
import { inLoadOrder, loads } from './modules-order.ts';
import { insmodStep, type LoadedModule, setupStep } from './test-plan.ts';

export interface PrepareInput {
  c: Pick<Config, 'timeouts' | 'failNth' | 'root' | 'cpus'>;
  suite: Suite;
  session: SshSession;
  files: readonly string[];
  /** The ELF files the upload leaves out, for its step's line. */
  elfLeftOut?: readonly string[];
  kver: string;
  /** A host build that succeeded: its tree and products are uploaded, nothing is built in the guest. */
  host?: SuiteHostBuild;
  guestRecords?: { dir: string; replay: boolean };
  /** The guest already has files of this suite (a kept instance): send only what changed, unload leftovers. */
  reuse?: boolean;
  /** The guest's hot devices: the suite's own are plugged first. */
  devices?: GuestDevices;
  log: (l: string) => void;
}

export interface Prepared {
  ok: boolean;
  checks: CheckResult[];
  records: StepRecord[];
  modules: LoadedModule[];
  /** The in-tree modules kmodvm loaded for them (in-tree-deps.ts), to remove after the run. */
  deps: string[];
  /** The fixtures set up for them (fixtures.ts), to take down after the run. */
  fixtures: Fixture[];
  devices?: GuestDevices;
  /** The guest's kmodvm-device requests (device-channel.ts), when it has hot devices. */
  channel?: DeviceChannel;
}

const failedCheck = (r: StepRecord): CheckResult => ({
  name: r.name,
  ok: false,
  failure: r.failure,
  durationMs: r.result.durationMs,
  message: r.message,
  evidence: `${r.result.stdout}\n${r.result.stderr}`.trim().split('\n').slice(-15).join('\n'),
});

/** What goes up: the suite's files (from the host build tree when the host built, with the stripped modules beside them), else its roots. */
function uploadParts(i: PrepareInput) {
  const { suite } = i;
  if (i.host) return [{ localDir: i.host.tree, sub: '.', files: [...i.files, ...i.host.products] }, ...i.host.moduleParts];
  if (suite.mounts)
    return suite.mounts.map((m) => ({
      localDir: m.abs,
      sub: m.rel,
      files: i.files.filter((f) => f.startsWith(`${m.rel}/`)).map((f) => f.slice(m.rel.length + 1)),
    }));
  return [{ localDir: suite.root, sub: '.', files: i.files }];
}

/**
 * An upload that failed, by where (#29.14): staging and the host's tar throw
 * before anything reaches the guest (their messages start "upload:", or are
 * the file system's, with a code); that is the host's failure, setup (exit
 * 3). The guest's side failing (a full disk, a dead connection) is the
 * upload's, exit 6. Neither is the module's.
 */
export function uploadFailed(sent: Error, durationMs: number): CheckResult {
  const onHost = sent.message.startsWith('upload:') || 'code' in sent;
  const evidence = onHost
    ? `${sent.message}\nnext: this failed on the host, before anything reached the guest: the files named above are the ones to look at`
    : `${sent.message}\nnext: the guest did not take the files; look at the serial console (serial.log) and run again`;
  return {
    name: 'upload',
    ok: false,
    failure: onHost ? 'setup' : 'upload',
    durationMs,
    message: onHost ? `on the host: ${sent.message}` : sent.message,
    evidence,
  };
}

/** The suite's files into the guest: a failure on the host (staging, tar) is told apart from the guest not taking them. */
async function upload(i: PrepareInput): Promise<CheckResult> {
  const { c, session } = i;
  const t0 = Date.now();
  const leftOut: string[] = [];
  const sent = await session.uploadTrees(GUEST_WORK, uploadParts(i), c.timeouts.command * 1000, { skipUnchanged: i.reuse, leftOut }).catch((e: Error) => e);
  if (sent instanceof Error) return uploadFailed(sent, Date.now() - t0);
  const elf = i.elfLeftOut?.length
    ? `; left out, ELF files (a binary in a source tree is built from it; include: brings one back): ${i.elfLeftOut.join(', ')}`
    : '';
  const left = `${leftOut.length ? `; left out, not a regular file inside its tree: ${leftOut.join(', ')}` : ''}${elf}`;
  return { name: 'upload', ok: true, durationMs: Date.now() - t0, message: `${sent.length}${i.reuse ? ' changed' : ''} files${left}` };
}

/** The host build's modules, those each dir's load:/skip: choose (#29.10), with their dir's parameters. */
export function hostModules(suite: Suite, host: SuiteHostBuild): LoadedModule[] {
  const byDir = new Map(suite.modules.map((m) => [m.dir, m]));
  return host.dirs.flatMap((d) =>
    inLoadOrder(
      d.modules.filter((m) => loads(m.name, byDir.get(d.dir) ?? {})),
      byDir.get(d.dir) ?? {},
    ).map((m) => ({
      name: m.name,
      guestKo: `${GUEST_WORK}/${m.guestRel}`,
      params: byDir.get(d.dir)?.params ?? [],
      ...(byDir.get(d.dir)?.kunit ? { kunit: d.dir } : {}),
      host: { ko: m.hostKo, tree: host.tree, kdir: host.kdir },
    })),
  );
}

/**
 * What the kernel gives the suite's modules, before they load: the
 * fixtures first (the modules may bind to them, or need what they load),
 * then the in-tree dependencies; then the modules in their dependency
 * order (modules.order breaking ties; they unload in reverse). False when
 * one of these failed, said in out.checks.
 */
async function kernelSide(i: PrepareInput, out: Prepared): Promise<boolean> {
  const { c, suite, session } = i;
  const fx = await loadFixtures(session, suite.fixtures, c.timeouts, Boolean(i.reuse));
  Object.assign(out, { fixtures: fx.loaded, checks: [...out.checks, ...fx.checks], records: [...out.records, ...fx.records] });
  if (!fx.ok) return false;
  const deps = await loadInTreeDeps(session, out.modules, c.timeouts);
  Object.assign(out, { deps: deps.loaded, checks: [...out.checks, ...deps.checks], records: [...out.records, ...deps.records] });
  if (!deps.ok) return false;
  const ordered = orderByDepends(out.modules, deps.depends);
  if (!ordered.ok) {
    const message = `the suite's modules depend on each other in a cycle: ${ordered.cycle.join(' -> ')}`;
    const evidence = 'next: one of them must not need the other (their depends=, from modinfo)';
    out.checks.push({ name: 'load order', ok: false, failure: 'load', durationMs: 0, message, evidence });
    return false;
  }
  out.modules = ordered.modules;
  return true;
}

/** Where a guest records that it ran these setup lines: in its /run, so a fresh guest (booted or resumed) has none. */
export const setupMarker = (lines: readonly string[]): string =>
  `/run/kmodvm-setup-${createHash('sha256').update(JSON.stringify(lines)).digest('hex').slice(0, 16)}`;

/** The suite's setup lines, once per guest (#29.18): a kept instance that ran them already (watch, --reuse) is not asked again. */
async function runSetup(i: PrepareInput, out: Prepared): Promise<boolean> {
  const { c, suite, session } = i;
  if (!suite.setup.length) return true;
  const marker = setupMarker(suite.setup);
  if (i.reuse) {
    const seen = await session.execKept(['test', '-e', marker], { timeoutMs: c.timeouts.load * 1000 });
    if (seen.exitCode === 0) {
      out.checks.push({ name: 'setup', ok: true, durationMs: seen.durationMs, message: 'already run on this guest (setup runs once per guest)' });
      return true;
    }
  }
  for (const [k, line] of suite.setup.entries()) {
    i.log(`step setup[${k}]`);
    const r = await runStep(session, setupStep(line, k, c.timeouts));
    out.records.push(r);
    if (!r.ok) {
      out.checks.push(failedCheck(r));
      return false;
    }
    out.checks.push({ name: r.name, ok: true, durationMs: r.result.durationMs, message: line });
  }
  await session.execKept(['touch', marker], { timeoutMs: c.timeouts.load * 1000 });
  return true;
}

export async function prepareGuest(i: PrepareInput): Promise<Prepared> {
  const { c, suite, session } = i;
  const out: Prepared = { ok: true, checks: [], records: [], modules: [], deps: [], fixtures: [], devices: i.devices };
  // The suite's devices are there before anything loads: a driver loaded once probes them at insmod.
  const plugged = (await i.devices?.plug(suite.devices.map((d) => d.id))) ?? [];
  out.checks.push(...plugged);
  if (plugged.some((x) => !x.ok)) return { ...out, ok: false };
  const up = await upload(i);
  out.checks.push(up);
  if (!up.ok) return { ...out, ok: false };
  if (i.host) {
    out.modules = hostModules(suite, i.host);
  } else {
    const g = await guestBuildSuite({ c, suite, session, kver: i.kver, records: i.guestRecords, log: i.log });
    out.checks.push(...g.checks);
    out.records.push(...g.records);
    if (!g.ok) return { ...out, ok: false };
    out.modules = g.modules;
  }
  if (i.reuse) {
    // An earlier cycle that stopped half-way may have left the modules loaded.
    await session.execKept(['sh', '-c', 'for m do rmmod "$m" 2>/dev/null; done; true', 'sh', ...out.modules.map((m) => m.name).reverse()], {
      timeoutMs: c.timeouts.load * 1000,
    });
  }
  if (!(await kernelSide(i, out))) return { ...out, ok: false };
  if (!(await runSetup(i, out))) return { ...out, ok: false };
  if (suite.load === 'once' && !c.failNth) {
    for (const m of out.modules) {
      const r = await runStep(session, insmodStep(m, m.params, c.timeouts));
      out.records.push(r);
      if (!r.ok) {
        out.checks.push(failedCheck(r));
        return { ...out, ok: false };
      }
      out.checks.push({ name: r.name, ok: true, durationMs: r.result.durationMs, message: m.params.join(' ') || undefined });
    }
  }
  return out;
}
