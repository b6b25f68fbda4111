// The host build's upload parts: one per module directory, whatever the number of modules its Makefile builds.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { stageTrees } from '../../../scripts/lib/guest/upload.ts';
import { addModulePart } from '../../../scripts/lib/suite/host-build.ts';

t.test('two modules of one Makefile go up from one part of their directory (#29: the second one collided, EEXIST, exit 6)', async (t) => {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-upload-two-'));
  const guest = path.join(tree, 'module/.kmodvm-guest');
  mkdirSync(guest, { recursive: true });
  for (const ko of ['hello-1.ko', 'startstop.ko']) writeFileSync(path.join(guest, ko), ko);
  const parts: Parameters<typeof addModulePart>[0] = [];
  for (const file of ['hello-1.ko', 'startstop.ko']) addModulePart(parts, { localDir: guest, sub: 'module', file });
  t.equal(parts.length, 1);
  const staged = await stageTrees('/root/kmodvm', [{ localDir: tree, sub: '.', files: [] }, ...parts]);
  try {
    t.same(staged.files, ['module/hello-1.ko', 'module/startstop.ko']);
  } finally {
    await staged.cleanup();
  }
});
