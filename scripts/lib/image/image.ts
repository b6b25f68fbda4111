// The guest image: built once per recipe hash, cached atomically. Layout of
// an image directory (all written into a temporary directory first, then
// renamed into place, so an interrupted build never looks valid):
//   rootfs.qcow2 (ext4, zstd-compressed)  vmlinux  vmlinuz  initrd.img  initrd-lean.cpio
//   id_ed25519 (0600)  id_ed25519.pub  host_ed25519.pub  manifest.json
import { cp, mkdir, readdir, rename, rm, symlink, writeFile, readFile, copyFile, chmod } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Config } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { buildInitrd } from './initrd.ts';
import { run, shellJoin, tail } from '../core/proc.ts';
import { hasPasswordlessSudo } from '../host/preflight.ts';
import {
  BUILDER_VERSION,
  guestLinks,
  initramfsToolsFiles,
  loadRecipe,
  mmdebstrapArgs,
  recipeHash,
  recipeInputs,
  withLoginShell,
  type Recipe,
} from './recipe.ts';
import { extractVmlinux } from './vmlinux.ts';
import { diskBytes, mib } from '../core/disk.ts';
import { exportHeaders, headersKdir, kernelGccMajor } from './headers.ts';
import { withProgress } from '../core/progress.ts';

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
  clientKey: string;
  hostPub: string;
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
  };
}

export function imageKey(c: Config): { key: string; recipe: Recipe } {
  const recipe = loadRecipe(path.resolve(c.root, c.recipe));
  return { key: recipeHash(recipeInputs(path.join(c.root, 'qemu'), recipe)), recipe };
}

export function imagesDir(c: Config): string {
  return path.join(c.cacheDir, 'images');
}

/** The cached image for the current recipe, or undefined. A directory without manifest.json is not an image. */
export async function findImage(c: Config): Promise<ImageInfo | undefined> {
  const { key } = imageKey(c);
  const dir = path.join(imagesDir(c), key);
  if (!existsSync(path.join(dir, 'manifest.json'))) return undefined;
  const manifest = JSON.parse(await readFile(path.join(dir, 'manifest.json'), 'utf8')) as Manifest;
  const files = imageFiles(dir);
  const broken = (why: string): KmodvmError =>
    new KmodvmError('image', `the cached image ${dir} is broken: ${why}`, {
      hint: `delete it and build again: rm -rf ${shellJoin([dir])}`,
    });
  for (const f of [files.rootfs, files.vmlinux, files.initrdLean, files.clientKey, files.hostPub]) {
    if (!existsSync(f)) throw broken(`${path.basename(f)} is missing`);
  }
  // Images built before ed25519KeyPair() may hold a key with a byte missing: sshd refuses it.
  for (const f of [files.clientKey, files.hostPub]) {
    if (ssh2.utils.parseKey(await readFile(f, 'utf8')) instanceof Error)
      throw broken(`${path.basename(f)} is not a valid key (ssh2's key generator dropped a leading zero byte)`);
  }
  return { ...files, key, manifest, cmdline: manifest.recipe.kernelCmdline };
}

/** Builds the image for the current recipe (root only), unless it is cached. */
/** The cached image, built first when there is none. onBuilt runs after a build (the loop's prune hint). */
export async function ensureImage(c: Config, log: (l: string) => void, o: { onBuilt?: () => Promise<void> } = {}): Promise<ImageInfo> {
  const found = await findImage(c);
  if (found) return found;
  if (process.getuid?.() !== 0) {
    const by = `sudo env KMODVM_CACHE_DIR=${shellJoin([c.cacheDir])} npm run vm:image -- build${c.kernel !== 'debian-12' ? ` --kernel ${c.kernel}` : ''}`;
    if (!(await hasPasswordlessSudo())) {
      throw new KmodvmError('setup', 'building the guest image needs root (mmdebstrap --mode=root, mkfs.ext4 -d keeps file ownership)', {
        hint: `build it once as root, into the same cache:\n  ${by}`,
      });
    }
    // Passwordless sudo (CI runners, many laptops): build as root, then hand the image to this user.
    log(`image: building as root through sudo: ${by}`);
    const tsx = path.join(c.root, 'node_modules/.bin/tsx');
    const argv = [
      '-n',
      'env',
      `KMODVM_CACHE_DIR=${c.cacheDir}`,
      `PATH=${process.env.PATH ?? ''}`,
      process.execPath,
      tsx,
      path.join(c.root, 'scripts/vm-image.ts'),
      'build',
      '--kernel',
      c.kernel,
      '--recipe',
      c.recipe,
    ];
    if (c.mirror) argv.push('--mirror', c.mirror);
    const r = await run('sudo', argv, { timeoutMs: 40 * 60_000, echo: true });
    if (r.exitCode !== 0) throw new KmodvmError('image', `the image build under sudo failed (${r.reason})`, { evidence: tail(r.stderr, 20) });
    const own = await run('sudo', ['-n', 'chown', '-R', `${process.getuid?.()}:${process.getgid?.()}`, imagesDir(c)], { timeoutMs: 10 * 60_000 });
    if (own.exitCode !== 0) throw new KmodvmError('image', `cannot hand the image to this user (${own.reason})`, { evidence: own.stderr });
    const img = await findImage(c);
    if (!img) throw new KmodvmError('image', 'the image build under sudo left no image');
    return img;
  }
  return buildImage(c, log, o);
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

export async function buildImage(c: Config, log: (l: string) => void, o: { onBuilt?: () => Promise<void> } = {}): Promise<ImageInfo> {
  const { key, recipe } = imageKey(c);
  const qemuDir = path.join(c.root, 'qemu');
  const started = Date.now();
  const final = path.join(imagesDir(c), key);
  await mkdir(imagesDir(c), { recursive: true });
  // Leftovers of interrupted builds are never valid images: remove them.
  for (const n of await readdir(imagesDir(c))) if (n.startsWith('.tmp-')) await rm(path.join(imagesDir(c), n), { recursive: true, force: true });
  const tmp = path.join(imagesDir(c), `.tmp-${key}-${process.pid}`);
  const files = imageFiles(tmp);
  const rootfs = path.join(tmp, 'rootfs');
  const step = (what: string): void => log(`image [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${what}`);
  try {
    await mkdir(tmp, { recursive: true });
    // Keys: a client key for root's authorized_keys, and the guest's host key, pinned by the client.
    const client = ed25519KeyPair(`kmodvm-${key}`);
    const host = ed25519KeyPair(`kmodvm-guest-${key}`);
    await writeFile(files.clientKey, client.private, { mode: 0o600 });
    await writeFile(`${files.clientKey}.pub`, client.public + '\n');
    await writeFile(files.hostPub, host.public + '\n');

    const essential = path.join(tmp, 'overlay-essential');
    for (const [rel, content] of initramfsToolsFiles(recipe)) {
      await mkdir(path.dirname(path.join(essential, rel)), { recursive: true });
      await writeFile(path.join(essential, rel), content);
    }
    const custom = path.join(tmp, 'overlay');
    await cp(path.join(qemuDir, 'guest'), custom, { recursive: true, verbatimSymlinks: true });
    for (const [rel, target] of Object.entries(guestLinks(qemuDir))) {
      await mkdir(path.dirname(path.join(custom, rel)), { recursive: true });
      await symlink(target, path.join(custom, rel));
    }
    await mkdir(path.join(custom, 'root/.ssh'), { recursive: true, mode: 0o700 });
    await chmod(path.join(custom, 'root/.ssh'), 0o700);
    await chmod(path.join(custom, 'root'), 0o700);
    await writeFile(path.join(custom, 'root/.ssh/authorized_keys'), client.public + '\n', { mode: 0o600 });
    await writeFile(path.join(custom, 'etc/ssh/ssh_host_ed25519_key'), host.private, { mode: 0o600 });
    await writeFile(path.join(custom, 'etc/ssh/ssh_host_ed25519_key.pub'), host.public + '\n');

    const args = mmdebstrapArgs(recipe, { essentialOverlay: essential, customizeOverlay: custom, target: rootfs, mirror: c.mirror });
    step(`mmdebstrap ${recipe.suite}: ${recipe.packages.length} packages (takes a few minutes)`);
    log(`$ ${shellJoin(['mmdebstrap', ...args])}`);
    const mm = await withProgress(`mmdebstrap ${recipe.suite}`, c.verbose, () => run('mmdebstrap', args, { timeoutMs: 30 * 60_000, echo: c.verbose }));
    if (mm.exitCode !== 0) {
      throw new KmodvmError('image', `mmdebstrap failed (${mm.reason})`, {
        evidence: tail(mm.stderr, 25),
        hint: "check that Debian's mirror is reachable; behind your own mirror set KMODVM_MIRROR=http://…/debian",
      });
    }
    const kvers = await readdir(path.join(rootfs, 'lib/modules'));
    if (kvers.length !== 1) throw new KmodvmError('image', `expected one kernel in the image, found ${kvers.join(', ') || 'none'}`);
    const kver = kvers[0];
    step(`kernel ${kver}: extracting vmlinux`);
    await copyFile(path.join(rootfs, 'boot', `vmlinuz-${kver}`), files.vmlinuz);
    await copyFile(path.join(rootfs, 'boot', `initrd.img-${kver}`), files.initrdStock);
    if (!(await extractVmlinux(files.vmlinuz, files.vmlinux))) {
      // Neither xz nor zstd: boot the bzImage itself (slower under TCG, same kernel).
      log('  the kernel payload is neither xz nor zstd; the VM will boot the bzImage');
      await copyFile(files.vmlinuz, files.vmlinux);
    }
    // The boot files live outside the rootfs (the systemd profile boots these copies).
    await rm(path.join(rootfs, 'boot', `vmlinuz-${kver}`));
    await rm(path.join(rootfs, 'boot', `initrd.img-${kver}`));
    const passwd = path.join(rootfs, 'etc/passwd');
    await writeFile(passwd, withLoginShell(await readFile(passwd, 'utf8'), 'root', '/bin/sh'));
    step('exporting the kbuild headers (for --build host)');
    await exportHeaders(rootfs, final, tmp, kver);
    const gccMajor = kernelGccMajor(await readFile(path.join(headersKdir(tmp, kver), 'include/generated/autoconf.h'), 'utf8').catch(() => ''));
    step("lean initrd (busybox, modules, the image's sshd + cpio)");
    const initScript = await readFile(path.join(qemuDir, 'initrd-init.sh'), 'utf8');
    const mods = await buildInitrd({
      rootfs,
      kver,
      modules: recipe.initrdModules,
      initScript,
      work: path.join(tmp, 'initrd'),
      out: files.initrdLean,
      earlySshd: true,
    });
    log(`  initrd modules: ${mods.join(' ')}`);
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
    const q = await run('dpkg-query', [`--admindir=${path.join(rootfs, 'var/lib/dpkg')}`, '-W', '-f', '${Package}\t${Version}\n'], { timeoutMs: 60_000 });
    const packages = Object.fromEntries(
      q.stdout
        .trim()
        .split('\n')
        .filter(Boolean)
        .map((l) => l.split('\t') as [string, string]),
    );
    step(`mkfs.ext4 -d (${recipe.imageSizeMiB} MiB, sparse)`);
    const raw = path.join(tmp, 'rootfs.ext4');
    const mk = await run('mkfs.ext4', ['-q', '-F', '-L', 'kmodvm-root', '-d', rootfs, raw, `${recipe.imageSizeMiB}M`], { timeoutMs: 10 * 60_000 });
    if (mk.exitCode !== 0)
      throw new KmodvmError('image', `mkfs.ext4 failed (${mk.reason})`, {
        evidence: tail(mk.stderr, 15),
        hint: 'raise imageSizeMiB in qemu/kernels/<kernel>.json if the tree does not fit',
      });
    // zstd-compressed qcow2: about a quarter of the ext4 image on disk (and in the CI cache);
    // QEMU decompresses on the host at native speed, and -snapshot keeps it read-only.
    // 4 KiB clusters: QEMU decompresses a whole cluster per read and caches none, so the
    // default 64 KiB made every 4 KiB page read (a header file in a guest build) cost 16.
    step('qemu-img convert -c (qcow2, zstd, 4 KiB clusters)');
    const qi = await run('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd,cluster_size=4096', raw, files.rootfs], {
      timeoutMs: 10 * 60_000,
    });
    if (qi.exitCode !== 0) throw new KmodvmError('image', `qemu-img convert failed (${qi.reason})`, { evidence: tail(qi.stderr, 15) });
    await rm(raw);
    for (const d of [rootfs, essential, custom, path.join(tmp, 'initrd')]) await rm(d, { recursive: true, force: true });
    const sizes: Record<string, number> = {};
    for (const n of await readdir(tmp)) sizes[n] = await diskBytes(path.join(tmp, n));
    const manifest: Manifest = {
      key,
      builderVersion: BUILDER_VERSION,
      recipe,
      kernelVersion: kver,
      kernelGccMajor: gccMajor,
      packages,
      sizes,
      buildSeconds: Math.round((Date.now() - started) / 100) / 10,
      builtAt: new Date().toISOString(),
    };
    await writeFile(path.join(tmp, 'manifest.json'), JSON.stringify(manifest, null, 2) + '\n');
    await rm(final, { recursive: true, force: true });
    await rename(tmp, final);
    const total = Object.values(sizes).reduce((a, b) => a + b, 0);
    step(`done: ${final} (${mib(total)} on disk, ${Object.keys(packages).length} packages)`);
    await o.onBuilt?.();
    const info = await findImage(c);
    if (!info) throw new KmodvmError('internal', `image ${final} vanished after the build`);
    return info;
  } catch (e) {
    await rm(tmp, { recursive: true, force: true });
    throw e;
  }
}
