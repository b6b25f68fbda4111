import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { cachedSymbols, dbgPackageOf, dbgVmlinuxPath, fetchArgs, releaseOf, symbolsDir } from '../../../scripts/lib/debug/kernel-symbols.ts';

const k = { suite: 'bookworm', name: 'linux-image-6.1.0-57-amd64', version: '6.1.192-3' };

t.test("the stock kernel's package gives the -dbg package, its vmlinux path and its cache directory, by exact version", async (t) => {
  t.equal(dbgPackageOf(k), 'linux-image-6.1.0-57-amd64-dbg');
  t.equal(releaseOf(k), '6.1.0-57-amd64');
  t.equal(dbgVmlinuxPath(k), 'usr/lib/debug/boot/vmlinux-6.1.0-57-amd64');
  t.equal(symbolsDir('/c', k), '/c/kernel-symbols/linux-image-6.1.0-57-amd64-dbg_6.1.192-3');
});

t.test('mmdebstrap is asked for that version only, extracted, everything but /usr/lib/debug/boot left out; the mirror only when given', async (t) => {
  t.same(fetchArgs(k, '/tmp/x'), [
    '--variant=extract',
    '--mode=auto',
    '--dpkgopt=path-exclude=/*',
    '--dpkgopt=path-include=/usr/lib/debug/boot/*',
    '--include=linux-image-6.1.0-57-amd64-dbg=6.1.192-3',
    'bookworm',
    '/tmp/x',
  ]);
  t.equal(fetchArgs(k, '/tmp/x', 'file:///m').at(-1), 'file:///m');
});

t.test('a cache entry counts only when its vmlinux is there (a fetch is renamed into place whole)', async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-syms-'));
  t.equal(cachedSymbols(cache, k), undefined);
  mkdirSync(symbolsDir(cache, k), { recursive: true });
  t.equal(cachedSymbols(cache, k), undefined, 'an empty directory is not symbols');
  writeFileSync(path.join(symbolsDir(cache, k), 'vmlinux'), 'x');
  t.equal(cachedSymbols(cache, k), path.join(symbolsDir(cache, k), 'vmlinux'));
});
