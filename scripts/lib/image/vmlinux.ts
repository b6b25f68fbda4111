// Debian ships an xz-compressed bzImage. Under TCG, decompressing it costs
// about 2.3 s per boot, so the image build extracts the ELF vmlinux once
// (the same trick as the kernel's scripts/extract-vmlinux, with Debian's xz)
// and QEMU boots it directly through its PVH entry.
import { readFile } from 'node:fs/promises';
import { execa } from 'execa';
import { KmodvmError } from '../core/errors.ts';

const XZ_MAGIC = Buffer.from([0xfd, 0x37, 0x7a, 0x58, 0x5a, 0x00]);
const ZSTD_MAGIC = Buffer.from([0x28, 0xb5, 0x2f, 0xfd]);

/** Offset of the xz stream inside a bzImage, or -1. */
export function findXzPayload(bzImage: Buffer): number {
  return bzImage.indexOf(XZ_MAGIC);
}

type Kind = 'xz' | 'zstd' | 'lz4';
const MAGICS: [Kind, Buffer][] = [
  ['xz', XZ_MAGIC],
  ['zstd', ZSTD_MAGIC],
  // the kernel's lz4 payload is lz4's legacy frame (Debian's cloud flavour)
  ['lz4', Buffer.from([0x02, 0x21, 0x4c, 0x18])],
];
const DECOMPRESS: Record<Kind, [string, string[]]> = {
  xz: ['xz', ['--decompress', '--stdout', '--single-stream']],
  zstd: ['zstd', ['--decompress', '--stdout', '--quiet']],
  lz4: ['lz4', ['-d', '-c']],
};

/**
 * Where the compressed payload of a bzImage may start: every place one of
 * the magics of xz (Debian 12), zstd (Debian 13) or lz4 (the cloud flavour)
 * occurs, in file order. A magic can also occur by chance (the cloud
 * kernel's setup data holds zstd's), so the caller tries them in turn, as
 * the kernel's scripts/extract-vmlinux does.
 */
export function payloadCandidates(bzImage: Buffer, most = 8): { kind: Kind; at: number }[] {
  const out: { kind: Kind; at: number }[] = [];
  for (const [kind, magic] of MAGICS) {
    for (let at = bzImage.indexOf(magic); at >= 0 && out.length < 64; at = bzImage.indexOf(magic, at + 1)) out.push({ kind, at });
  }
  return out.sort((a, b) => a.at - b.at).slice(0, most);
}

/** The first candidate payload of a bzImage (see payloadCandidates). */
export function findPayload(bzImage: Buffer): { kind: Kind; at: number } | undefined {
  return payloadCandidates(bzImage, 1)[0];
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
 * Writes the uncompressed vmlinux of `bzImagePath` to `out`, with Debian's
 * xz, zstd or lz4. Returns false when no payload is in any of those formats
 * (the caller then boots the bzImage). Trailing data after the stream is
 * normal (the tools then exit non-zero); the ELF check decides.
 */
export async function extractVmlinux(bzImagePath: string, out: string): Promise<boolean> {
  const bz = await readFile(bzImagePath);
  const candidates = payloadCandidates(bz);
  if (!candidates.length) return false;
  const tried: string[] = [];
  for (const p of candidates) {
    const [cmd, args] = DECOMPRESS[p.kind];
    const r = await execa(cmd, args, { input: bz.subarray(p.at), stdout: { file: out }, reject: false, timeout: 120_000 });
    if (isCompleteElf64(await readFile(out))) return true;
    tried.push(`${p.kind} at byte ${p.at}: ${String(r.stderr).trim().split('\n').at(-1) || `exit ${r.exitCode}`}`);
  }
  throw new KmodvmError('image', `extracting vmlinux from ${bzImagePath} gave no complete ELF file`, { evidence: tried.join('\n') });
}
