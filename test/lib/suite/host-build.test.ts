// The host build's upload parts: one per module directory, whatever the number of modules its Makefile builds.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { stageTrees } from '../../../scripts/lib/guest/upload.ts';
import { addModulePart, buildChecks, findOrder } from '../../../scripts/lib/suite/host-build.ts';

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

t.test("modules.order: the dir's own, else the shallowest below it (#29.9: lttng builds with M=$(PWD)/src); none is said as such (#29.13)", async (t) => {
  const tree = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-order-'));
  mkdirSync(path.join(tree, 'src/probes'), { recursive: true });
  mkdirSync(path.join(tree, '.kmodvm-guest'), { recursive: true });
  writeFileSync(path.join(tree, '.kmodvm-guest/modules.order'), 'x.ko\n');
  t.equal(await findOrder(tree), undefined, "none: kmodvm's own dirs are not looked in");
  writeFileSync(path.join(tree, 'src/probes/modules.order'), 'p.ko\n');
  writeFileSync(path.join(tree, 'src/modules.order'), 'lttng-tracer.ko\n');
  t.equal(await findOrder(tree), 'src/modules.order');
  writeFileSync(path.join(tree, 'modules.order'), 'top.ko\n');
  t.equal(await findOrder(tree), 'modules.order');
  const checks = buildChecks({
    ok: false,
    tree,
    kdir: '/k',
    products: [],
    moduleParts: [],
    durationMs: 0,
    dirs: [
      {
        dir: 'drv',
        kind: 'module',
        modules: [],
        message: 'make succeeded but wrote no modules.order in drv',
        build: { ok: false, durationMs: 1, output: '', evidence: 'make succeeded (exit 0), but wrote no modules.order in drv or below it' },
      },
    ],
  });
  t.equal(checks[0].message, 'make succeeded but wrote no modules.order in drv (on the host)');
  t.notMatch(checks[0].evidence ?? '', /fix the code/, 'not told to fix code that built');
});
