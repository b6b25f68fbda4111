// The static checks' inputs (#27.3): which of the suite's files checkpatch
// reads, and where checkpatch.pl comes from.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { checkpatchFiles, checkpatchIn, STATIC_MAKE } from '../../../scripts/lib/suite/static-check.ts';

t.test("checkpatch reads the user's .c and .h files, not kbuild's generated .mod.c nor anything else", async (t) => {
  t.same(checkpatchFiles(['lint/lint_me.c', 'lint/lint_me.mod.c', 'include/q.h', 'lint/Makefile', 'tests/run.sh', 'README.md']), [
    'lint/lint_me.c',
    'include/q.h',
  ]);
  t.same(STATIC_MAKE, ['W=1', 'C=2', 'CHECK=sparse']);
});

t.test("checkpatch.pl is the debug kernel's tree's; without it, a setup error (exit 3) that says where kmodvm looked", async (t) => {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-cp-'));
  t.throws(() => checkpatchIn(tree), { failure: 'setup', message: new RegExp(`checkpatch\\.pl, which is not in ${tree}/scripts`) });
  mkdirSync(path.join(tree, 'scripts'));
  writeFileSync(path.join(tree, 'scripts/checkpatch.pl'), '#!/usr/bin/perl\n');
  t.equal(checkpatchIn(tree), path.join(tree, 'scripts/checkpatch.pl'));
});
