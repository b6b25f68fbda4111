// Debian ships an xz-compressed bzImage. Under TCG, decompressing it costs
// about 2.3 s per boot, so the image build extracts the ELF vmlinux once
// (the same trick as the kernel's scripts/extract-vmlinux, with Debian's xz)
// and QEMU boots it directly through its PVH entry.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { KmodvmError } from './errors.ts';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Offset of the xz stream inside a bzImage, or -1. */
export function findXzPayload(bzImage: Buffer): number {
  return bzImage.indexOf(XZ_MAGIC);
}

/** The compressed payload of a bzImage: xz (Debian 12) or zstd (Debian 13), with its offset. */
export function findPayload(bzImage: Buffer): { kind: 'xz' | 'zstd'; at: number } | undefined {
  const xz = bzImage.indexOf(XZ_MAGIC);
  if (xz >= 0) return { kind: 'xz', at: xz };
  const zst = bzImage.indexOf(ZSTD_MAGIC);
  if (zst >= 0) return { kind: 'zstd', at: zst };
  return undefined;
}

/** Whether buf is a complete little-endian ELF64 file: magic, and section headers inside the file. */
export function isCompleteElf64(buf: Buffer): boolean {
  if (buf.length < 64 || buf.readUInt32BE(0) !== 0x7f454c46 || buf[4] !== 2 || buf[5] !== 1) return false;
  const shoff = Number(buf.readBigUInt64LE(0x28));
  const shentsize = buf.readUInt16LE(0x3a);
  const shnum = buf.readUInt16LE(0x3c);
  return shoff > 0 && shoff + shentsize * shnum <= buf.length;
}

/**
 * Writes the uncompressed vmlinux of `bzImagePath` to `out`, with Debian's xz
 * or zstd. Returns false when the payload is in neither format (the caller
 * then boots the bzImage). Trailing data after the stream is normal; the ELF
 * check decides.
 */
export async function extractVmlinux(bzImagePath: string, out: string): Promise<boolean> {
  const bz = await readFile(bzImagePath);
  const p = findPayload(bz);
  if (!p) return false;
  const [cmd, args] = p.kind === 'xz' ? ['xz', ['--decompress', '--stdout', '--single-stream']] : ['zstd', ['--decompress', '--stdout', '--quiet']];
  const r = await execa(cmd, args, {
    input: bz.subarray(p.at), stdout: { file: out }, reject: false, timeout: 120_000,
  });
  const elf = await readFile(out);
  if (!isCompleteElf64(elf)) {
    throw new KmodvmError('image', `extracting vmlinux (${p.kind}) from ${bzImagePath} gave no complete ELF file`, { evidence: String(r.stderr) });
  }
  return true;
}
