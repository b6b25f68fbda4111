// Some hosts have a /dev/kvm on which guests hang without a word. With
// --accel auto, a KVM boot whose serial console stays silent for a few
// seconds is killed and the run boots under TCG instead; the verdict is
// remembered per host in the cache, so later runs do not probe again.
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { writeJsonAtomic } from '../core/atomic.ts';
import type { Config } from '../core/config.ts';
import { waitUntil } from '../core/wait.ts';

export interface ProbeMemo {
  host: string;
  kvmWorks: boolean;
  checkedAt: string;
}

/** What identifies "this host" for the memo: its name and its kernel. */
export function hostId(): string {
  return `${os.hostname()} ${os.release()}`;
}

export const memoFile = (c: Pick<Config, 'cacheDir'>): string => path.join(c.cacheDir, 'kvm-probe.json');

export async function readMemo(c: Pick<Config, 'cacheDir'>): Promise<ProbeMemo | undefined> {
  const m = JSON.parse(await readFile(memoFile(c), 'utf8').catch(() => 'null')) as ProbeMemo | null;
  return m && m.host === hostId() ? m : undefined;
}

export async function writeMemo(c: Pick<Config, 'cacheDir'>, kvmWorks: boolean): Promise<void> {
  await mkdir(c.cacheDir, { recursive: true });
  await writeJsonAtomic(memoFile(c), { host: hostId(), kvmWorks, checkedAt: new Date().toISOString() } satisfies ProbeMemo);
}

/** Whether the serial log got any byte within ms, while alive() holds; polled every 50 ms. */
export async function serialSpeaks(serialLog: string, ms: number, alive: () => boolean): Promise<boolean> {
  const w = await waitUntil(() => existsSync(serialLog) && statSync(serialLog).size > 0, { deadlineMs: ms, alive });
  return w.end === 'ready';
}
