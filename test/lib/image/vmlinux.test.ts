import t from 'tap';
import { findPayload, findXzPayload, isCompleteElf64 } from '../../../scripts/lib/image/vmlinux.ts';

function elf(total: number, shoff: number, shnum: number): Buffer {
  const b = Buffer.alloc(total);
  b.writeUInt32BE(0x7f454c46, 0);
  b[4] = 2;
  b[5] = 1;
  b.writeBigUInt64LE(BigInt(shoff), 0x28);
  b.writeUInt16LE(64, 0x3a);
  b.writeUInt16LE(shnum, 0x3c);
  return b;
}

t.test('an ELF whose section headers lie inside the file is complete; a truncated one is not', async (t) => {
  t.equal(isCompleteElf64(elf(1000, 100, 10)), true);
  t.equal(isCompleteElf64(elf(1000, 900, 10)), false);
  t.equal(isCompleteElf64(Buffer.from('MZ not an elf at all, padding padding padding padding padding pad')), false);
});

t.test('the xz stream is found after the bzImage setup code', async (t) => {
  const bz = Buffer.concat([Buffer.alloc(5000, 0x90), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00, 1, 2])]);
  t.equal(findXzPayload(bz), 5000);
  t.equal(findXzPayload(Buffer.alloc(100)), -1);
});

t.test('a zstd payload (Debian 13) is recognised; an unknown one is not', async (t) => {
  t.same(findPayload(Buffer.concat([Buffer.alloc(700), Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 9])])), { kind: 'zstd', at: 700 });
  t.same(findPayload(Buffer.concat([Buffer.alloc(10), Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00])])), { kind: 'xz', at: 10 });
  t.equal(findPayload(Buffer.alloc(64)), undefined);
});

t.test('a chance magic before the payload is passed over: the first candidate that gives a whole ELF wins (lz4, the cloud flavour)', async (t) => {
  const { execFileSync } = await import('node:child_process');
  const { mkdtempSync, readFileSync, writeFileSync } = await import('node:fs');
  const os = await import('node:os');
  const path = await import('node:path');
  const { extractVmlinux, payloadCandidates } = await import('../../../scripts/lib/image/vmlinux.ts');
  const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-vmlinux-'));
  writeFileSync(path.join(d, 'k.c'), 'int kernel_entry(void) { return 0; }\n');
  execFileSync('gcc', ['-c', '-o', path.join(d, 'k.o'), path.join(d, 'k.c')]);
  const elf = readFileSync(path.join(d, 'k.o'));
  // the kernel's lz4 payload is lz4's legacy frame: lz4 -l
  const lz4 = execFileSync('lz4', ['-l', '-c'], { input: elf });
  // setup code holding zstd's magic by chance (as the Debian cloud kernel's does), then the payload, then trailing data
  const bz = Buffer.concat([Buffer.alloc(300, 0x90), Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x11]), Buffer.alloc(200, 0x90), lz4, Buffer.from('trailer')]);
  t.same(
    payloadCandidates(bz).map((c) => c.kind),
    ['zstd', 'lz4'],
  );
  writeFileSync(path.join(d, 'vmlinuz'), bz);
  t.equal(await extractVmlinux(path.join(d, 'vmlinuz'), path.join(d, 'vmlinux')), true);
  t.same(readFileSync(path.join(d, 'vmlinux')), elf, 'the ELF, whole');
  // nothing decompresses to an ELF: an image error that lists what was tried
  writeFileSync(path.join(d, 'bad'), Buffer.concat([Buffer.alloc(10), Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 1, 2, 3])]));
  const err = await extractVmlinux(path.join(d, 'bad'), path.join(d, 'out')).then(
    () => undefined,
    (e: Error & { evidence?: string }) => e,
  );
  t.match(err?.message, /no complete ELF/);
  t.match(err?.evidence, /zstd at byte 10/, 'the evidence names what was tried');
});
