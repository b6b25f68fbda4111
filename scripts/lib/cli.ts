// The shared shape of every entry point: run main(), turn any error into a
// message with evidence and next steps, and exit with the documented code.
import { exitCodeOf, formatError } from './errors.ts';

export const log = (line: string): void => { process.stderr.write(line + '\n'); };

export async function main(fn: () => Promise<number>): Promise<void> {
  let code: number;
  try {
    code = await fn();
  } catch (e) {
    log(formatError(e));
    code = exitCodeOf(e);
  }
  process.exitCode = code;
  // Give streams a moment to flush, then leave even if a handle lingers.
  setTimeout(() => process.exit(code), 50).unref();
}
