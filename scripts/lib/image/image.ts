// The guest image: built once per recipe hash (build.ts), cached atomically. Layout of
// an image directory (all written into a temporary directory first, then
// renamed into place, so an interrupted build never looks valid):
//   rootfs.qcow2 (ext4, zstd-compressed)  vmlinux  vmlinuz  initrd.img  initrd-lean.cpio
//   id_ed25519 (0600)  id_ed25519.pub  host_ed25519.pub  manifest.json

import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Config } from '../core/config.ts';
import { privateDir } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import { checkIntegrity, readIntegrity, recordIntegrity } from '../core/integrity.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { shellJoin } from '../core/proc.ts';
import { loadRecipe, type Recipe, recipeHash, recipeInputs } from './recipe.ts';

export interface Manifest {
  key: string;
  builderVersion: number;
  recipe: Recipe;
  kernelVersion: string;
  /** gcc major version that built the kernel (for --build host). */
  kernelGccMajor?: number;
  packages: Record<string, string>;
  sizes: Record<string, number>;
  buildSeconds: number;
  builtAt: string;
}

export interface ImageInfo {
  dir: string;
  key: string;
  manifest: Manifest;
  rootfs: string;
  vmlinux: string;
  vmlinuz: string;
  initrdLean: string;
  initrdStock: string;
  /** The keys of the lean initrd's sshd (this seat's own after an import). */
  clientKey: string;
  hostPub: string;
  /** The keys of the root file system's sshd (systemd profile, your own kernel): the image's own, shared by every seat it was imported on. */
  rootfsClientKey: string;
  rootfsHostPub: string;
  cmdline: string[];
}

export function imageFiles(dir: string): Omit<ImageInfo, 'key' | 'manifest' | 'cmdline'> {
  return {
    dir,
    rootfs: path.join(dir, 'rootfs.qcow2'),
    vmlinux: path.join(dir, 'vmlinux'),
    vmlinuz: path.join(dir, 'vmlinuz'),
    initrdLean: path.join(dir, 'initrd-lean.cpio'),
    initrdStock: path.join(dir, 'initrd.img'),
    clientKey: path.join(dir, 'id_ed25519'),
    hostPub: path.join(dir, 'host_ed25519.pub'),
    ...(existsSync(path.join(dir, SHARED_KEYS))
      ? { rootfsClientKey: path.join(dir, SHARED_KEYS, 'id_ed25519'), rootfsHostPub: path.join(dir, SHARED_KEYS, 'host_ed25519.pub') }
      : { rootfsClientKey: path.join(dir, 'id_ed25519'), rootfsHostPub: path.join(dir, 'host_ed25519.pub') }),
  };
}

/** After an import (rekey.ts): the archive's keys, which the root file system's sshd still has. */
export const SHARED_KEYS = 'shared-keys';

/** The image's own files that integrity.json records (the headers tree is checked by the host build that uses it). */
export function imageFileNames(dir: string): string[] {
  return [
    'rootfs.qcow2',
    'vmlinux',
    'vmlinuz',
    'initrd-lean.cpio',
    'initrd.img',
    'id_ed25519',
    'host_ed25519.pub',
    'manifest.json',
    `${SHARED_KEYS}/id_ed25519`,
    `${SHARED_KEYS}/host_ed25519.pub`,
  ].filter((n) => existsSync(path.join(dir, n)));
}

/** vm:image verify: every recorded file hashed again. */
export async function verifyImage(dir: string): Promise<string[]> {
  const rec = await readIntegrity(dir);
  if (!rec) return ['integrity.json: missing (the image was built before kmodvm recorded its files; it is recorded on its next use)'];
  return checkIntegrity(dir, rec, { all: true });
}

export function imageKey(c: Pick<Config, 'recipe' | 'root'>): { key: string; recipe: Recipe } {
  const recipe = loadRecipe(path.resolve(c.root, c.recipe));
  return { key: recipeHash(recipeInputs(path.join(c.root, 'qemu'), recipe)), recipe };
}

export function imagesDir(c: Pick<Config, 'cacheDir'>): string {
  return path.join(c.cacheDir, 'images');
}

/** The cached image for the current recipe, or undefined. A directory without manifest.json is not an image. */
export async function findImage(c: Pick<Config, 'cacheDir' | 'recipe' | 'root'>): Promise<ImageInfo | undefined> {
  const { key } = imageKey(c);
  const dir = path.join(imagesDir(c), key);
  if (!existsSync(path.join(dir, 'manifest.json'))) return undefined;
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const files = imageFiles(dir);
  await privateDir(dir); // it holds the client key and, in the initrd, the guest's host key
  const broken = (why: string): KmodvmError =>
    new KmodvmError('image', `the cached image ${dir} is broken: ${why}`, {
      hint: `delete it and build again: rm -rf ${shellJoin([dir])} (or ${kmodvmCommand('image', 'build --force')})`,
    });
  for (const f of [files.rootfs, files.vmlinux, files.initrdLean, files.clientKey, files.hostPub]) {
    if (!existsSync(f)) throw broken(`${path.basename(f)} is missing`);
  }
  // Images built before ed25519KeyPair() may hold a key with a byte missing: sshd refuses it.
  for (const f of new Set([files.clientKey, files.hostPub, files.rootfsClientKey, files.rootfsHostPub])) {
    if (ssh2.utils.parseKey(await readFile(f, 'utf8')) instanceof Error)
      throw broken(`${path.basename(f)} is not a valid key (ssh2's key generator dropped a leading zero byte)`);
  }
  // What was written at the build, checked before QEMU boots from it (core/integrity.ts): a stat each, a hash when one changed.
  const rec = (await readIntegrity(dir)) ?? (await recordIntegrity(dir, imageFileNames(dir)).catch(() => undefined));
  const bad = rec ? await checkIntegrity(dir, rec) : [];
  if (bad.length) throw broken(bad.join('; '));
  return { ...files, key, manifest, cmdline: manifest.recipe.kernelCmdline };
}

/** Whether ssh2 can read both halves of a generated key pair back. */
export function keyPairUsable(k: { private: string; public: string }): boolean {
  return !(ssh2.utils.parseKey(k.public) instanceof Error) && !(ssh2.utils.parseKey(k.private) instanceof Error);
}

/**
 * An ed25519 key pair in OpenSSH format. ssh2's generator (1.17, keygen.js)
 * strips every leading zero byte of the public key, not only the bit
 * string's padding byte, so about 1 pair in 256 holds a 31-byte key that
 * sshd will not load and ssh2 will not parse. Such a pair is drawn again.
 */
export function ed25519KeyPair(
  comment: string,
  generate = (): { private: string; public: string } => ssh2.utils.generateKeyPairSync('ed25519', { comment }),
): { private: string; public: string } {
  for (let i = 0; i < 16; i++) {
    const k = generate();
    if (keyPairUsable(k)) return k;
  }
  throw new KmodvmError('internal', 'could not generate a valid ed25519 key pair in 16 tries');
}
