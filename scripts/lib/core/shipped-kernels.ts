// The kernels kmodvm ships: a recipe per name in qemu/kernels/, a debug kernel per name in qemu/debug-kernels/.
import { readdirSync } from 'node:fs';
import path from 'node:path';

/** The names --kernel takes: the image recipes (qemu/kernels/), then with debug the debug kernels (qemu/debug-kernels/). */
export function shippedKernels(root: string, o: { debug?: boolean } = {}): string[] {
  const names = (dir: string): string[] => {
    try {
      return readdirSync(path.join(root, dir))
        .filter((f) => f.endsWith('.json'))
        .map((f) => f.slice(0, -5));
    } catch {
      return [];
    }
  };
  return [...names('qemu/kernels'), ...(o.debug ? names('qemu/debug-kernels') : [])].sort();
}
