import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { crashArgs, crashScript, readDump, vmlinuxFor } from '../../../scripts/lib/debug/crash.ts';

const fixtures = new URL('../../fixtures/dump/', import.meta.url).pathname;
const record = JSON.parse(readFileSync(path.join(fixtures, 'dump.json'), 'utf8'));

/** A run directory with the recorded dump.json in its dump/. */
function runDir(rec: unknown = record): string {
  const run = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-crash-'));
  mkdirSync(path.join(run, 'dump', 'modules'), { recursive: true });
  writeFileSync(path.join(run, 'report.json'), '{}');
  writeFileSync(path.join(run, 'dump', 'dump.json'), JSON.stringify(rec));
  writeFileSync(path.join(run, 'dump', 'vmcore'), 'KDUMP');
  writeFileSync(path.join(run, 'dump', 'modules', 'crashme.ko'), 'ELF');
  return run;
}

t.test("crash's first commands: each module's symbols from its kept .ko, then the backtrace; a batch script then quits", async (t) => {
  t.equal(crashScript(record, '/r/dump'), 'mod -s crashme /r/dump/modules/crashme.ko\nbt\n');
  t.equal(crashScript(record, '/r/dump', 'sym crashme_deref\nlog\n'), 'mod -s crashme /r/dump/modules/crashme.ko\nbt\nsym crashme_deref\nlog\nquit\n');
  t.same(crashArgs('/r/s', '/v/vmlinux', '/r/dump/vmcore'), ['-s', '--no_crashrc', '-i', '/r/s', '/v/vmlinux', '/r/dump/vmcore']);
});

t.test('readDump takes a run directory or the dump directory itself', async (t) => {
  const run = runDir();
  t.equal((await readDump(run)).dir, path.join(run, 'dump'));
  t.equal((await readDump(path.join(run, 'dump'))).record.test, 'oops');
});

t.test('bad input is a usage error that says what is there: no dump, not a run, a changed record, a path out of the dump', async (t) => {
  const empty = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-crash-'));
  await t.rejects(readDump(empty), { failure: 'usage', message: /has no dump and is not a run directory/ });
  writeFileSync(path.join(empty, 'report.json'), '{}');
  await t.rejects(readDump(empty), { failure: 'usage', message: /no guest panicked in that run, or it ran without --dump/, hint: /--dump/ });
  await t.rejects(readDump(runDir({ ...record, bytes: -1 })), { failure: 'usage', message: /field `bytes`/ });
  await t.rejects(readDump(runDir({ ...record, vmcore: '../../etc/shadow' })), { failure: 'usage', message: /outside its directory/ });
  await t.rejects(readDump(runDir({ ...record, modules: [{ name: 'x', ko: '/etc/passwd' }] })), { message: /outside its directory/ });
  const linked = runDir();
  rmSync(path.join(linked, 'dump', 'modules', 'crashme.ko'));
  symlinkSync('/etc/passwd', path.join(linked, 'dump', 'modules', 'crashme.ko'));
  await t.rejects(
    readDump(linked),
    { failure: 'usage', message: /crashme\.ko is not a regular file \(missing, or a link\)/ },
    'a link in a downloaded dump is not followed',
  );
});

t.test("the kernel's symbols: the run's vmlinux where it is here, else the cached -dbg; without them, the hint says how to get them", async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-crash-cache-'));
  const c = { cacheDir: cache, mirror: '', verbose: false, kernelSymbols: false };
  await t.rejects(
    vmlinuxFor(c, record, () => {}),
    {
      failure: 'usage',
      message: /no symbols for the guest kernel 6\.1\.0-57-amd64/,
      hint: /linux-image-6\.1\.0-57-amd64-dbg once \(about 0\.9 GB[^)]*\): add --kernel-symbols/,
    },
  );
  const syms = path.join(cache, 'kernel-symbols', 'linux-image-6.1.0-57-amd64-dbg_6.1.192-3');
  mkdirSync(syms, { recursive: true });
  writeFileSync(path.join(syms, 'vmlinux'), '');
  t.equal(await vmlinuxFor(c, record, () => {}), path.join(syms, 'vmlinux'));
  const own = path.join(cache, 'kernels', 'debian-12-debug-k', 'vmlinux');
  mkdirSync(path.dirname(own), { recursive: true });
  cpSync(path.join(syms, 'vmlinux'), own);
  t.equal(await vmlinuxFor(c, { ...record, vmlinux: own }, () => {}), own, "the run's own first: a kernel in kmodvm's cache");
  await t.rejects(
    vmlinuxFor(c, { ...record, kernelPackage: undefined, vmlinux: '/etc/passwd' }, () => {}),
    {
      message: /no symbols/,
      hint: /\/etc\/passwd is not a kernel in this machine's cache/,
    },
    'a path a dump.json names outside the cache is not followed',
  );
});
