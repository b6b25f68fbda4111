// The exported headers' -amd64 Makefile includes its -common tree by a relative path, so a tree works wherever it is.
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { relativeCommonInclude } from '../../../scripts/lib/image/headers.ts';

t.test("an imported image's absolute include of the exporting cache's -common tree becomes relative", async (t) => {
  const img = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-headers-'));
  const kdir = path.join(img, 'headers/usr/src/linux-headers-6.1.0-57-amd64');
  mkdirSync(kdir, { recursive: true });
  // The line as a cached image of the last release has it.
  writeFileSync(path.join(kdir, 'Makefile'), 'include /root/.cache/kmodvm/images/604710d6ef4c5561/headers/usr/src/linux-headers-6.1.0-57-common/Makefile\n');
  t.equal(await relativeCommonInclude(img), true);
  t.equal(readFileSync(path.join(kdir, 'Makefile'), 'utf8'), 'include ../linux-headers-6.1.0-57-common/Makefile\n');
  t.equal(await relativeCommonInclude(img), false, 'a relative one is left as it is');
});
