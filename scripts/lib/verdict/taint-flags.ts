// The kernel's taint flags, in one place: their letters, which a test may
// add (O, E), and the two whose presence the verdict reads (O: an out-of-tree
// module was loaded this boot; E: the kernel checks module signatures).

/** Taint flag O: an out-of-tree module was loaded this boot. */
export const TAINT_OOT = 1 << 12;
/** Taint flag E: an unsigned module was loaded by a kernel that checks signatures. */
export const TAINT_UNSIGNED = 1 << 13;

/** Taint flags, bit → letter, as in Documentation/admin-guide/tainted-kernels.rst. */
export const TAINT_LETTERS = 'PFSRMBUDAWCIOELKXTN';

export function taintLetters(mask: number): string[] {
  return [...TAINT_LETTERS].filter((_, bit) => (mask & (1 << bit)) !== 0);
}

/** New taint flags, other than the expected O (out-of-tree) and E (unsigned). */
export function unexpectedTaint(before: number, after: number, allowed = ['O', 'E']): string[] {
  const prior = new Set(taintLetters(before));
  return taintLetters(after).filter((l) => !prior.has(l) && !allowed.includes(l));
}
