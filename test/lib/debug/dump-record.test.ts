import { readFileSync } from 'node:fs';
import t from 'tap';
import { dumpDirName, dumpMessage, dumpRecordSchema, parseDumpSetup, setupProblem } from '../../../scripts/lib/debug/dump-record.ts';

const fixture = (f: string): string => readFileSync(new URL(`../../fixtures/dump/${f}`, import.meta.url), 'utf8');

t.test("the guest's answer to DUMP_SETUP (Debian 12's stock kernel, recorded) says it can give a dump", async (t) => {
  const s = parseDumpSetup(fixture('setup-debian-12.txt'));
  t.same(s, { pvpanic: true, vmcoreinfo: true, panicOnOops: true, release: '6.1.0-57-amd64' });
  t.equal(setupProblem(s), undefined);
});

t.test('a kernel without the pvpanic driver, or one that refuses panic_on_oops, cannot: the problem names the kernel and the option', async (t) => {
  const none = parseDumpSetup(fixture('setup-debian-12.txt').replace('pvpanic=yes', 'pvpanic=no'));
  t.match(setupProblem(none), /kernel 6\.1\.0-57-amd64 has no pvpanic driver[\s\S]*CONFIG_PVPANIC_MMIO/);
  t.match(setupProblem({ ...none, pvpanic: true, panicOnOops: false }), /panic_on_oops/);
  t.same(parseDumpSetup('sh: 1: modprobe: not found\n'), { pvpanic: false, vmcoreinfo: false, panicOnOops: false, release: '' }, 'noise is not an answer');
  t.match(setupProblem(parseDumpSetup('')), /kernel \(unknown\)/);
});

t.test('dump.json of a real run (the crashme oops) is valid; a changed one is not', async (t) => {
  const rec = JSON.parse(fixture('dump.json'));
  const ok = dumpRecordSchema.safeParse(rec);
  t.ok(ok.success);
  t.match(rec.panic, /BUG: kernel NULL pointer dereference[\s\S]*RIP: 0010:crashme_deref\+0x5\/0x10 \[crashme\]/);
  t.notOk(dumpRecordSchema.safeParse({ ...rec, vmcoreFormat: 'raw' }).success);
  t.notOk(dumpRecordSchema.safeParse({ ...rec, extra: 1 }).success, 'strict: an unknown field is refused');
  t.notOk(dumpRecordSchema.safeParse({ ...rec, format: 'kmodvm-dump/2' }).success);
});

t.test("a run's dumps are dump, dump-2, dump-3 …; the message names the size and the command", async (t) => {
  t.same([1, 2, 3].map(dumpDirName), ['dump', 'dump-2', 'dump-3']);
  t.equal(
    dumpMessage({ bytes: 39067518, vmcoreFormat: 'kdump-zlib' }, 'dump', 'npx kmodvm crash runs/x'),
    'the guest panicked; its memory is in dump/vmcore (37 MiB, kdump-zlib); open it with: npx kmodvm crash runs/x',
  );
});
