// An ExecResult for unit tests of what judges a guest command's result.
import type { ExecResult } from '../../scripts/lib/guest/ssh.ts';

export const execResult = (o: Partial<ExecResult> = {}): ExecResult => ({
  command: 'x',
  exitCode: 0,
  signal: undefined,
  timedOut: false,
  stdout: '',
  stderr: '',
  durationMs: 1,
  reason: 'exited 0',
  ...o,
});
