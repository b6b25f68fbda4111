// --memcheck's slab check on a stock kernel: SLUB's red zones and poisoning
// on every cache, freed pages poisoned, KFENCE sampling (a kernel without
// KFENCE, such as Debian 12's, ignores it), and every object of every cache
// checked after each test. A write past an object or after kfree is a SLUB
// report in the log, which no-splat judges. The debug kernel has KASAN,
// which reports such a write as it happens: there the check is left out.
import type { CheckRoom } from './check.ts';

/** SLUB checks every object of every cache now (red zones, poison). */
export const VALIDATE_SLABS = 'for f in /sys/kernel/slab/*/validate; do echo 1 > "$f"; done 2>/dev/null';

export const slabCheck: CheckRoom = {
  id: 'memcheck-slab',
  about: '--memcheck on a stock kernel: SLUB debugging on every cache, and every slab checked after each test',
  wanted: (c) => c.memcheck && !c.debugKernel,
  create: () => ({ id: 'memcheck-slab', kernelArgs: ['slub_debug=FZP', 'page_poison=1', 'kfence.sample_interval=100'], afterTest: VALIDATE_SLABS }),
};
