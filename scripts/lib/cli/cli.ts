// The shared shape of every entry point: run main(), turn any error into a
// message with evidence and next steps, and exit with the documented code.
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { currentCrashDir, EXIT_CODES, exitCodeOf, formatError } from '../core/errors.ts';
import { installSignalHandling } from '../core/signals.ts';

let showCommands = false;

/** --verbose and --dry-run show the exact commands (the log lines that start with "$ "); by default each step is one line. */
export function setShowCommands(on: boolean): void {
  showCommands = on;
}

export const log = (line: string): void => {
  if (!showCommands && line.startsWith('$ ')) return;
  process.stderr.write(line + '\n');
};

/**
 * Output piped into a reader that stopped (`npm run vm:status | head -1`):
 * stop writing and leave quietly, as cat does, rather than crash on EPIPE.
 * Exit code 0 for stdout, which the reader closed on purpose.
 */
export function quietOnClosedPipe(stream: NodeJS.WriteStream, exit: (code: number) => void = (c) => process.exit(c)): void {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') return exit(0);
    throw e;
  });
}

/**
 * On GitHub Actions, everything this process prints is fenced with
 * ::stop-commands::, so a module or an app that prints `::add-mask::`,
 * `::error::` or `##[...]` cannot steer the job: the runner acts on nothing
 * until the token comes back. kmodvm's own annotations go out through
 * workflowCommands(), which lifts the fence for them alone.
 */
let fence: string | undefined;

function stopCommands(): void {
  fence = randomBytes(16).toString('hex');
  process.stdout.write(`::stop-commands::${fence}\n`);
}

/** Prints workflow commands of our own (annotations) outside the fence; outside GitHub Actions, prints nothing. */
export function workflowCommands(lines: readonly string[]): void {
  if (!fence) return;
  process.stdout.write(`::${fence}::\n`);
  for (const l of lines) process.stdout.write(`${l}\n`);
  stopCommands();
}

export async function main(fn: () => Promise<number>): Promise<void> {
  quietOnClosedPipe(process.stdout);
  if (process.env.GITHUB_ACTIONS === 'true') {
    // One stream: the runner reads stdout and stderr apart, so guest text on stderr could arrive after the fence is
    // lifted on stdout for our own annotations. Children that inherit fd 2 (--verbose) are still apart: see README.
    process.stderr.write = process.stdout.write.bind(process.stdout) as typeof process.stderr.write;
    stopCommands();
    process.on('exit', () => fence && process.stdout.write(`::${fence}::\n`));
  }
  // A bug that escapes every catch is a bug (70), with its stack, never exit 1 (the transcript class).
  const crash = (e: unknown): void => {
    log(formatError(e));
    const dir = currentCrashDir();
    if (dir) {
      try {
        writeFileSync(path.join(dir, 'crash.log'), `${formatError(e)}\n`);
        log(`the stack is kept in ${path.join(dir, 'crash.log')}`);
      } catch {
        /* the stderr copy is enough */
      }
    }
    process.exit(EXIT_CODES.internal);
  };
  installSignalHandling();
  process.on('unhandledRejection', crash);
  process.on('uncaughtException', crash);
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
