// vm:watch: on every save of a file the suite uploads (debounced), run the
// suite on a running instance and print a one-screen verdict.
// A kernel that a buggy module may have corrupted never decides the next
// verdict: after a splat, a new taint, a failed rmmod or a hang the instance
// is rebooted fresh first.

import path from 'node:path';
import chokidar from 'chokidar';
import type { Config } from '../core/config.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { onSignal } from '../core/signals.ts';
import type { SshSession } from '../guest/ssh.ts';
import { isBuildProduct } from '../suite/files.ts';
import { srcPath } from '../suite/load.ts';
import { resolveSuite } from '../suite/resolve.ts';
import { allChecks, flatChecks, type RunReport } from '../verdict/model.ts';
import { writeReports } from '../verdict/write-reports.ts';
import { connect, type InstanceState, lookup } from '../vm/instance.ts';
import { newRunDir } from './assemble.ts';
import { downInstance, testOnInstance, upInstance } from './instance-run.ts';
import { planRun } from './plan.ts';

/** Collects changed paths and fires once they have been quiet for `ms`. */
export function debouncer(ms: number, fire: (paths: string[]) => void): (p: string) => void {
  let pending = new Set<string>();
  let timer: NodeJS.Timeout | undefined;
  return (p: string) => {
    pending.add(p);
    clearTimeout(timer);
    timer = setTimeout(() => {
      const ps = [...pending].sort();
      pending = new Set();
      fire(ps);
    }, ms);
  };
}

/** The one-screen verdict of a watch cycle. */
export function verdictScreen(r: RunReport, changed: string[], latencyMs: number, root: string): string {
  const rel = (p: string): string => path.relative(root, p) || p;
  const failed = flatChecks(r).filter((c) => !c.ok);
  const build = r.checks.filter((c) => c.name.startsWith('build-'));
  const lines = [
    `──── ${new Date().toLocaleTimeString()} ${r.verdict === 'pass' ? 'PASS' : `FAIL (${r.failure})`} · save to verdict ${(latencyMs / 1000).toFixed(1)} s`,
    `changed: ${changed.map(rel).join(', ') || '(first run)'}`,
    `build:   ${build.map((c) => `${c.name.replace('build-', '')} ${c.ok ? 'ok' : 'FAILED'}${c.message?.startsWith('on the host') ? ' (host)' : ''}`).join(', ') || 'not reached'}`,
  ];
  for (const c of failed) {
    lines.push(`${c.name}: ${c.message ?? ''}`);
    if (c.evidence)
      lines.push(
        ...c.evidence
          .split('\n')
          .slice(0, 14)
          .map((l) => `  ${l}`),
      );
  }
  const tr = allChecks(r).filter((c) => c.name === 'transcript');
  if (!failed.length)
    lines.push(
      r.tests && r.tests.length > 1 ? `tests: ${r.tests.length} passed` : `transcript: ${tr.length ? `match (${tr[0].message ?? ''})` : 'none expected'}`,
    );
  lines.push(`run directory: ${r.runDir}`);
  return lines.join('\n');
}

/** One SSH connection for the whole watch (a new handshake costs ~0.3 s under TCG); a new one after a reboot. */
function sessionKeeper(): { get: (state: InstanceState) => Promise<SshSession>; drop: () => void } {
  let session: { s: SshSession; pid: number } | undefined;
  const drop = (): void => {
    session?.s.close();
    session = undefined;
  };
  const get = async (state: InstanceState): Promise<SshSession> => {
    if (!session || session.s.closed || session.pid !== state.pid) {
      drop();
      session = { s: await connect(state), pid: state.pid };
    }
    return session.s;
  };
  return { get, drop };
}

/** The changed paths that count: files the suite uploads, the suite file, and its transcripts (read afresh: the suite may have changed). */
async function countingChanges(
  c0: Pick<Config, 'appDir' | 'cacheDir' | 'moduleDir' | 'only' | 'root' | 'runsDir' | 'shard' | 'suite' | 'transcript' | 'update'>,
  paths: string[],
  log: (l: string) => void,
): Promise<string[]> {
  const rs = await resolveSuite(c0).catch((e: Error) => {
    log(`watch: ${e.message}`);
    return undefined;
  });
  if (!rs) return [];
  const mine = new Set([
    ...rs.files.map((f) => srcPath(rs.suite, f)),
    rs.suite.file,
    ...rs.suite.tests.flatMap((t) => (t.transcript ? [t.transcript.abs] : [])),
  ]);
  return paths.filter((p) => mine.has(p));
}

export async function watch(c0: Config, log: (l: string) => void, o: { once?: boolean } = {}): Promise<void> {
  const name = c0.name;
  const first = await resolveSuite(c0);
  // The instance boots with the suite's kernel_args.
  const c = planRun(c0, first).options;
  const root = first.suite.root;
  await upInstance(c, name, log).then(({ already }) => already && log(`watch: reusing instance ${name}`));
  const session = sessionKeeper();
  const cycle = async (changed: string[], savedAt: number): Promise<void> => {
    const l = await lookup(c, name);
    const state = l.alive ? l.state : (await upInstance(c, name, log)).state;
    const r = await session
      .get(state)
      .then((s) => testOnInstance(c0, state, newRunDir(c), () => undefined, { session: s }))
      .catch((e: Error) => {
        log(`watch: ${e.message}`);
        session.drop();
        return undefined;
      });
    if (!r) return;
    await writeReports(r.report);
    log(verdictScreen(r.report, changed, Date.now() - savedAt, root));
    if (r.needsReboot) {
      log(`watch: ${r.needsReboot}; rebooting instance ${name} fresh before the next run`);
      session.drop();
      await downInstance(r.state);
      await upInstance(c, name, log);
    }
  };
  await cycle([], Date.now());
  if (o.once) return session.drop();
  const busy = await watchUntilInterrupted(c, first, log, async (paths, savedAt) => {
    const changed = await countingChanges(c0, paths, log);
    if (changed.length) await cycle(changed, savedAt);
  });
  await busy();
  session.drop();
}

/** Watches the suite root until Ctrl-C; each settled burst of saves runs onSave, one at a time. Gives a wait for the cycle in flight. */
async function watchUntilInterrupted(
  c: Pick<Config, 'runsDir'>,
  first: Awaited<ReturnType<typeof resolveSuite>>,
  log: (l: string) => void,
  onSave: (paths: string[], savedAt: number) => Promise<void>,
): Promise<() => Promise<void>> {
  const root = first.suite.root;
  let busy: Promise<void> = Promise.resolve();
  let firstChange = 0;
  // 50 ms: editors write a file in one go (or rename over it); this only merges a save-all.
  const onChange = debouncer(50, (paths) => {
    const savedAt = firstChange;
    firstChange = 0;
    busy = busy.then(() => onSave(paths, savedAt)).catch((e: Error) => log(`watch: ${e.message}`));
  });
  const skipped = (p: string): boolean => {
    const rel = path.relative(root, p);
    return rel !== '' && (/(^|\/)(\.git|node_modules)(\/|$)/.test(rel) || p.startsWith(`${c.runsDir}/`) || p === c.runsDir || isBuildProduct(rel));
  };
  const watcher = chokidar.watch(first.suite.mounts?.map((m) => m.abs) ?? [root], { ignoreInitial: true, ignored: skipped });
  watcher.on('all', (_ev, p) => {
    if (!firstChange) firstChange = Date.now();
    onChange(p);
  });
  watcher.on('error', (e) => log(`watch: the file watcher failed: ${(e as Error).message}`));
  // Said once the initial scan is done: a save before that would go unseen.
  await new Promise<void>((resolve) => watcher.once('ready', () => resolve()));
  log(
    `watch: watching ${root} (the files ${path.basename(first.suite.file)} uploads); Ctrl-C stops watching (the instance stays up: ${kmodvmCommand('down')} ends it)`,
  );
  await new Promise<void>((resolve) => {
    const off = onSignal('SIGINT', () => {
      off();
      watcher.close().then(resolve, resolve);
    });
  });
  return () => busy;
}
