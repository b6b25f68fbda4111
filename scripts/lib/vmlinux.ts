// Debian ships an xz-compressed bzImage. Under TCG, decompressing it costs
// about 2.3 s per boot, so the image build extracts the ELF vmlinux once
// (the same trick as the kernel's scripts/extract-vmlinux, with Debian's xz)
// and QEMU boots it directly through its PVH entry.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { KmodvmError } from './errors.ts';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);

/** Offset of the xz stream inside a bzImage, or -1. */
export function findXzPayload(bzImage: Buffer): number {
  return bzImage.indexOf(XZ_MAGIC);
}

/** Whether buf is a complete little-endian ELF64 file: magic, and section headers inside the file. */
export function isCompleteElf64(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return false;
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  return shoff > 0 && shoff + shentsize * shnum <= buf.length;
}

/** Writes the uncompressed vmlinux of `bzImagePath` to `out`. xz reports trailing data after the stream; the ELF check decides. */
export async function extractVmlinux(bzImagePath: string, out: string): Promise<void> {
  const bz = await readFile(bzImagePath);
  const at = findXzPayload(bz);
  if (at < 0) throw new KmodvmError('image', `${bzImagePath} holds no xz stream`, { hint: 'the kernel is not xz-compressed; boot the bzImage instead (see docs/image.md)' });
  const r = await execa('xz', ['--decompress', '--stdout', '--single-stream'], {
    input: bz.subarray(at), stdout: { file: out }, reject: false, timeout: 120_000,
  });
  const elf = await readFile(out);
  if (!isCompleteElf64(elf)) {
    throw new KmodvmError('image', `extracting vmlinux from ${bzImagePath} gave no complete ELF file`, { evidence: String(r.stderr) });
  }
}
