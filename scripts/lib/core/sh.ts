// Which runner where. execa (proc.ts run()) for every child that matters to
// a verdict or runs long: QEMU, make, mmdebstrap, tar, cpio, with a result
// that says why it ended. zx's $ for one-line host queries whose template,
// with zx's quoting, reads best: `qemu --version`, `sudo -n true`. Both take
// argument arrays (a ${} in $ is one quoted argument), never a shell string.
import { $ } from 'zx';

/** A short host query: quiet, never throws on a non-zero exit, killed after 10 s. */
export const sh = $({ nothrow: true, quiet: true, timeout: '10s' });
