// Failure classes and their exit codes. The table is documented in README.md
// ("Exit codes") and tested in test/lib/core/errors.test.ts.

/** Why a run ended. Each class has its own exit code. */
export type FailureClass =
  | 'usage'
  | 'setup'
  | 'image'
  | 'boot'
  | 'upload'
  | 'build'
  | 'load'
  | 'app'
  | 'transcript'
  | 'splat'
  | 'timeout'
  | 'suite-setup'
  | 'static'
  | 'kunit'
  | 'coverage'
  | 'internal';

/**
 * Exit codes. 0 is a pass. Test failures (the module or app misbehaved) are
 * 1 and 10..18; environment and VM failures are 2..5, so CI can tell a broken
 * module from a broken machine. 70 is EX_SOFTWARE: a bug in this tool.
 */
export const EXIT_CODES: Readonly<Record<FailureClass, number>> = Object.freeze({
  transcript: 1,
  usage: 2,
  setup: 3,
  image: 4,
  boot: 5,
  upload: 6,
  build: 10,
  load: 11,
  app: 12,
  splat: 13,
  timeout: 14,
  'suite-setup': 15,
  static: 16,
  kunit: 17,
  coverage: 18,
  internal: 70,
});

/** Classes that mean the VM or the host failed, not the code under test. */
export const VM_FAILURES: ReadonlySet<FailureClass> = new Set(['setup', 'image', 'boot', 'upload']);

/** Where an unhandled error's stack goes, besides stderr: the run directory of the run under way. */
let crashDir: string | undefined;
export const setCrashDir = (dir: string | undefined): void => {
  crashDir = dir;
};
export const currentCrashDir = (): string | undefined => crashDir;

export class KmodvmError extends Error {
  readonly failure: FailureClass;
  /** What was seen: a log tail, a diff, compiler errors. */
  readonly evidence?: string;
  /** What to do next. */
  readonly hint?: string;

  constructor(failure: FailureClass, message: string, opts: { evidence?: string; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = 'KmodvmError';
    this.failure = failure;
    this.evidence = opts.evidence;
    this.hint = opts.hint;
  }

  get exitCode(): number {
    return EXIT_CODES[this.failure];
  }
}

/** Renders an error for a person: what failed, the evidence, what to do. */
export function formatError(err: unknown): string {
  if (err instanceof KmodvmError) {
    const parts = [`error [${err.failure}]: ${err.message}`];
    if (err.evidence)
      parts.push(
        err.evidence
          .replace(/\s+$/, '')
          .split('\n')
          .map((l) => `  | ${l}`)
          .join('\n'),
      );
    if (err.hint) parts.push(`next: ${err.hint}`);
    return parts.join('\n');
  }
  const e = err instanceof Error ? err : new Error(String(err));
  return `error [internal]: ${e.message}\n${e.stack ?? ''}\nnext: this is a bug in kmodvm; please report it with the output above.`;
}

export function exitCodeOf(err: unknown): number {
  return err instanceof KmodvmError ? err.exitCode : EXIT_CODES.internal;
}
