// The shapes shared by the suite's runner (run.ts) and its per-test part (run-test.ts).

import type { Config } from '../core/config.ts';
import type { Guest } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import type { CompiledRules } from '../verdict/splat.ts';
import type { Transcript } from '../verdict/transcript.ts';
import type { Check } from './checks/check.ts';
import type { SuiteHostBuild } from './host-build.ts';
import type { Suite, SuiteTest } from './load.ts';

export interface SelectedTest {
  test: SuiteTest;
  transcript?: Transcript;
  /** Under --repeat: this is run k of the test's `of` (suite/repeat.ts). */
  run?: { k: number; of: number };
}

/** What --gdb asked for (suite/gdb-step.ts): the test, gdb's batch script (none: the user's terminal), the kernel tree with its vmlinux. */
export interface GdbAsk {
  test: string;
  batch?: string;
  kernelTree?: string;
  /** The kernel's vmlinux with debug info, when the run has one (debug/kernel-symbols.ts runSymbols). */
  vmlinux?: string;
  /** --gdb-before-load: attached before the test's modules load. */
  beforeLoad?: boolean;
}

/** What --dump asked for (suite/dump-step.ts): on (the flag; the suite's dump: true also arms), and the debug kernel's vmlinux. */
export interface DumpAsk {
  on: boolean;
  vmlinux?: string;
  /** The stock kernel's Debian package, whose -dbg package has its symbols. */
  kernelPackage?: { suite: string; name: string; version: string };
}

export interface SuiteRunInput {
  c: Pick<Config, 'timeouts' | 'failNth' | 'root' | 'cpus'>;
  suite: Suite;
  tests: readonly SelectedTest[];
  files: readonly string[];
  /** The ELF files the upload leaves out (files.ts), named in its step's line. */
  elfLeftOut?: readonly string[];
  guest: Guest;
  runDir: string;
  kver: string;
  rules: CompiledRules;
  /** The run's checks (checks/registry.ts makeChecks), in report order. */
  checks: readonly Check[];
  /** The host build, started while the guest came up; none: build in the guest. */
  hostBuild?: Promise<SuiteHostBuild>;
  /** The static checks, run beside the build (static: in the suite). */
  staticCheck?: Promise<CheckResult>;
  guestRecords?: { dir: string; replay: boolean };
  /** Under KVM a guest build is cheap: a failed host build is done again in the guest. */
  guestFallback?: boolean;
  reuse?: boolean;
  /** A fresh guest in place of one the last test left untrusted. */
  fresh?: (why: string) => Promise<Guest>;
  update?: boolean;
  /** --gdb TEST (suite/gdb-step.ts). */
  gdb?: GdbAsk;
  /** --dump (suite/dump-step.ts). */
  dump?: DumpAsk;
  /** --repeat's runs after the first on the same guest (--same-guest); --until-fail. */
  repeat?: { sameGuest: boolean; untilFail: boolean; keep?: boolean };
  log: (l: string) => void;
}
