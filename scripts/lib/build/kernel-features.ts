// What a kernel must have for a run's checks (#27): KUnit for kunit: dirs,
// gcov for --coverage. Read from its build tree's .config before anything
// boots, so a kernel without them is a usage error naming the kernel that
// has them, never a silent run with no results.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

export interface KernelFeature {
  option: string;
  /** What asked for it, for the message: "kunit: (tests kunit:kunit)". */
  what: string;
}

/** The features of want the config text lacks (a `CONFIG_X=y` or `=m` line is having it). */
export function lackedFeatures(config: string, want: readonly KernelFeature[]): KernelFeature[] {
  const on = new Set(config.split('\n').flatMap((l) => /^(CONFIG_\w+)=[ym]$/.exec(l)?.[1] ?? []));
  return want.filter((f) => !on.has(f.option));
}

/** The features the kernel whose tree is kdir lacks; its .config unreadable is lacking every one. */
export async function kernelLacks(kdir: string, want: readonly KernelFeature[]): Promise<KernelFeature[]> {
  if (!want.length) return [];
  const config = await readFile(path.join(kdir, '.config'), 'utf8').catch(() => '');
  return lackedFeatures(config, want);
}
