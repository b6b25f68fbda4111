// A long host build is not silent (#29.17): kbuild's quiet lines ("  CC [M]
// src/lttng-events.o") are counted per module dir as make prints them, and
// every 15 s the dirs still building say how many objects they have
// compiled; with --verbose each line is shown as it comes. The counting is
// pure; the timer only prints.

/** kbuild's line for one object compiled for a module (quiet mode, the default V=0). */
const COMPILED = /^\s+CC \[M\]\s/;

export interface BuildProgress {
  onLine: (dir: string, line: string) => void;
  /** The lines for the dirs still building, at now. */
  tick: (now: number) => string[];
  /** The dir's make has ended: no more lines for it. */
  done: (dir: string) => void;
  stop: () => void;
}

export function buildProgress(o: { log: (l: string) => void; verbose: boolean; everyMs?: number; now?: () => number }): BuildProgress {
  const now = o.now ?? Date.now;
  const dirs = new Map<string, { since: number; compiled: number }>();
  const p: BuildProgress = {
    onLine: (dir, line) => {
      const d = dirs.get(dir) ?? { since: now(), compiled: 0 };
      dirs.set(dir, d);
      if (COMPILED.test(line)) d.compiled++;
      if (o.verbose) o.log(`make ${dir}| ${line}`);
    },
    tick: (at) =>
      [...dirs].map(
        ([dir, d]) => `build-module ${dir}: ${d.compiled} object${d.compiled === 1 ? '' : 's'} compiled so far (${Math.round((at - d.since) / 1000)} s)`,
      ),
    done: (dir) => {
      dirs.delete(dir);
    },
    stop: () => clearInterval(timer),
  };
  const timer = setInterval(() => {
    for (const l of p.tick(now())) o.log(l);
  }, o.everyMs ?? 15_000);
  timer.unref();
  return p;
}
