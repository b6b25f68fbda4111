// Progress for a long step: zx's spinner on a terminal; on a pipe or in CI,
// nothing but the step's own one line (printed by the caller). With
// --verbose the step's output streams instead, so no spinner is drawn over it.
import { spinner } from 'zx';

export async function withProgress<T>(title: string, verbose: boolean, fn: () => Promise<T>): Promise<T> {
  if (verbose || !process.stderr.isTTY) return fn();
  return spinner(title, fn);
}
