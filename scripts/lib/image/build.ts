// Building the guest image (root only): mmdebstrap with the recipe, the boot
// files, the kbuild headers, the lean initrd, ext4 and qcow2, all in a
// temporary directory (0700: it holds keys) renamed into place. One build per
// key at a time: the key's lock (proper-lockfile) is held from start to
// rename, and a second process waits, then takes the image the first built.

import { chmod, copyFile, cp, mkdir, readdir, readFile, rename, rm, stat, symlink, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Config } from '../core/config.ts';
import { diskBytes, mib, mkdirPrivate } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import { recordIntegrity } from '../core/integrity.ts';
import { kmodvmCommand } from '../core/invoked.ts';
import { withLock } from '../core/lock.ts';
import { pidAlive } from '../core/pid.ts';
import { run, shellJoin, tail } from '../core/proc.ts';
import { withProgress } from '../core/progress.ts';
import { hasPasswordlessSudo } from '../host/preflight.ts';
import { exportHeaders, headersKdir, kernelGccMajor } from './headers.ts';
import { ed25519KeyPair, findImage, type ImageInfo, imageFileNames, imageFiles, imageKey, imagesDir, type Manifest } from './image.ts';
import { buildInitrd } from './initrd.ts';
import { BUILDER_VERSION, guestLinks, initramfsToolsFiles, mmdebstrapArgs, type Recipe, withLoginShell } from './recipe.ts';
import { extractVmlinux } from './vmlinux.ts';

/** What an image build reads of the run's options. */
type BuildOptions = Pick<Config, 'cacheDir' | 'mirror' | 'recipe' | 'root' | 'verbose'>;

type Log = (l: string) => void;

/** A temporary build or import directory whose process is gone: `.tmp-<key>-<pid>` or `.tmp-import-<pid>`. */
export function staleTemp(name: string, alive: (pid: number) => boolean = pidAlive): boolean {
  const m = /^\.tmp-(?:[0-9a-f]+|import)-(\d+)$/.exec(name);
  return m ? !alive(Number(m[1])) : false;
}

/** Holds the image key's lock while fn runs; waits up to waitS for another build of the same key. */
export async function withImageLock<T>(c: Pick<Config, 'cacheDir'>, key: string, log: Log, fn: () => Promise<T>, waitS = 3600): Promise<T> {
  await mkdirPrivate(imagesDir(c));
  const onWait = (): void => log(`image: another kmodvm is building image ${key}; waiting for it`);
  return withLock(path.join(imagesDir(c), `.${key}`), { waitS, failure: 'image', what: `image ${key}`, onWait }, fn);
}

/** The cached image, built first when there is none. onBuilt runs after a build (the loop's prune hint). */
export async function ensureImage(
  c: BuildOptions & Pick<Config, 'kernel'>,
  log: (l: string) => void,
  o: { onBuilt?: () => Promise<void> } = {},
): Promise<ImageInfo> {
  const found = await findImage(c);
  if (found) return found;
  if (process.getuid?.() !== 0) {
    const by = `sudo env KMODVM_CACHE_DIR=${shellJoin([c.cacheDir])} ${kmodvmCommand('image', `build${c.kernel !== 'debian-12' ? ` --kernel ${c.kernel}` : ''}`)}`;
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
      path.join(c.root, 'scripts/kmodvm.ts'),
      'image',
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

/**
 * A build run as root through sudo (the README's recipe for a user without
 * passwordless sudo) builds into that user's cache: the cache, images/ and
 * the new image go to the user who ran sudo, or they could not read their
 * own key (it was EACCES on id_ed25519, exit 70).
 */
export async function handToSudoUser(
  c: Pick<Config, 'cacheDir'>,
  imageDir: string,
  log: Log,
  env = process.env,
  uid = process.getuid?.(),
): Promise<string | undefined> {
  if (uid !== 0 || !env.SUDO_UID || env.SUDO_UID === '0' || !/^\d+$/.test(env.SUDO_UID)) return undefined;
  const owner = `${env.SUDO_UID}:${/^\d+$/.test(env.SUDO_GID ?? '') ? env.SUDO_GID : env.SUDO_UID}`;
  const a = await run('chown', [owner, ...(await madeForUser(c.cacheDir, Number(env.SUDO_UID))), imagesDir(c)], { timeoutMs: 60_000 });
  const b = await run('chown', ['-R', owner, imageDir], { timeoutMs: 10 * 60_000 });
  if (a.exitCode !== 0 || b.exitCode !== 0)
    throw new KmodvmError('image', `cannot hand the image to the user who ran sudo (${owner})`, { evidence: a.stderr + b.stderr });
  log(`image: handed to uid ${owner} (the user who ran sudo)`);
  return owner;
}

/** The cache and the root-owned directories above it up to one the user owns (a ~/.cache root made): all the user's. Else the cache alone. */
async function madeForUser(cacheDir: string, uid: number): Promise<string[]> {
  const chain: string[] = [];
  for (let d = cacheDir; ; d = path.dirname(d)) {
    const st = await stat(d).catch(() => undefined);
    if (st?.uid === uid) return chain;
    if (st?.uid !== 0 || path.dirname(d) === d) return [cacheDir];
    chain.push(d);
  }
}

/** Builds the image for the current recipe, under its key's lock; when another process built it meanwhile, that one is taken. */
export async function buildImage(c: BuildOptions, log: Log, o: { onBuilt?: () => Promise<void>; force?: boolean } = {}): Promise<ImageInfo> {
  const { key, recipe } = imageKey(c);
  return withImageLock(c, key, log, async () => {
    if (!o.force) {
      const built = await findImage(c);
      if (built) return built;
    }
    // Leftovers of interrupted builds are never valid images: remove those whose process is gone, never a running one's.
    for (const n of await readdir(imagesDir(c))) if (staleTemp(n)) await rm(path.join(imagesDir(c), n), { recursive: true, force: true });
    const tmp = path.join(imagesDir(c), `.tmp-${key}-${process.pid}`);
    try {
      await mkdirPrivate(tmp);
      await chmod(tmp, 0o700);
      const info = await buildInto(c, key, recipe, tmp, log);
      await handToSudoUser(c, info.dir, log);
      await o.onBuilt?.();
      return info;
    } catch (e) {
      await rm(tmp, { recursive: true, force: true });
      throw e;
    }
  });
}

async function buildInto(c: BuildOptions, key: string, recipe: Recipe, tmp: string, log: Log): Promise<ImageInfo> {
  const started = Date.now();
  const final = path.join(imagesDir(c), key);
  const files = imageFiles(tmp);
  const rootfs = path.join(tmp, 'rootfs');
  const step = (what: string): void => log(`image [${((Date.now() - started) / 1000).toFixed(0).padStart(4)} s] ${what}`);
  const overlays = await stageOverlays(c, key, recipe, tmp);
  const args = mmdebstrapArgs(recipe, { essentialOverlay: overlays.essential, customizeOverlay: overlays.custom, target: rootfs, mirror: c.mirror });
  step(`mmdebstrap ${recipe.suite}: ${recipe.packages.length} packages (takes a few minutes)`);
  log(`$ ${shellJoin(['mmdebstrap', ...args])}`);
  const mm = await withProgress(`mmdebstrap ${recipe.suite}`, c.verbose, () => run('mmdebstrap', args, { timeoutMs: 30 * 60_000, echo: c.verbose }));
  if (mm.exitCode !== 0) {
    throw new KmodvmError('image', `mmdebstrap failed (${mm.reason})`, {
      evidence: tail(mm.stderr, 25),
      hint: "check that Debian's mirror is reachable; behind your own mirror set KMODVM_MIRROR=http://…/debian",
    });
  }
  const kver = await bootFiles(rootfs, files, step, log);
  step('exporting the kbuild headers (for --build host)');
  await exportHeaders(rootfs, tmp, kver);
  const gccMajor = kernelGccMajor(await readFile(path.join(headersKdir(tmp, kver), 'include/generated/autoconf.h'), 'utf8').catch(() => ''));
  step("lean initrd (busybox, modules, the image's sshd + cpio)");
  const initScript = await readFile(path.join(c.root, 'qemu', 'initrd-init.sh'), 'utf8');
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
  const packages = await packageList(rootfs);
  await diskImage(recipe, rootfs, tmp, files.rootfs, step);
  for (const d of [rootfs, overlays.essential, overlays.custom, path.join(tmp, 'initrd')]) await rm(d, { recursive: true, force: true });
  const sizes: Record<string, number> = {};
  for (const n of await readdir(tmp)) sizes[n] = await diskBytes(path.join(tmp, n));
  const buildSeconds = Math.round((Date.now() - started) / 100) / 10;
  const manifest: Manifest = {
    key,
    builderVersion: BUILDER_VERSION,
    recipe,
    kernelVersion: kver,
    kernelGccMajor: gccMajor,
    packages,
    sizes,
    buildSeconds,
    builtAt: new Date().toISOString(),
  };
  await writeFile(path.join(tmp, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  await recordIntegrity(tmp, imageFileNames(tmp));
  await rm(final, { recursive: true, force: true });
  await rename(tmp, final);
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  step(`done: ${final} (${mib(total)} on disk, ${Object.keys(packages).length} packages)`);
  const info = await findImage(c);
  if (!info) throw new KmodvmError('internal', `image ${final} vanished after the build`);
  return info;
}

/** The keys (a client key for root's authorized_keys, the guest's host key, pinned by the client) and the two mmdebstrap overlays. */
async function stageOverlays(c: Pick<Config, 'root'>, key: string, recipe: Recipe, tmp: string): Promise<{ essential: string; custom: string }> {
  const files = imageFiles(tmp);
  const qemuDir = path.join(c.root, 'qemu');
  const client = ed25519KeyPair(`kmodvm-${key}`);
  const host = ed25519KeyPair(`kmodvm-guest-${key}`);
  await writeFile(files.clientKey, client.private, { mode: 0o600 });
  await writeFile(`${files.clientKey}.pub`, `${client.public}\n`);
  await writeFile(files.hostPub, `${host.public}\n`);
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
  await writeFile(path.join(custom, 'root/.ssh/authorized_keys'), `${client.public}\n`, { mode: 0o600 });
  await writeFile(path.join(custom, 'etc/ssh/ssh_host_ed25519_key'), host.private, { mode: 0o600 });
  await writeFile(path.join(custom, 'etc/ssh/ssh_host_ed25519_key.pub'), `${host.public}\n`);
  return { essential, custom };
}

/** The one kernel's boot files, out of the rootfs (the systemd profile boots these copies); root's shell for SSH. Gives the kernel version. */
async function bootFiles(rootfs: string, files: ReturnType<typeof imageFiles>, step: Log, log: Log): Promise<string> {
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
  await rm(path.join(rootfs, 'boot', `vmlinuz-${kver}`));
  await rm(path.join(rootfs, 'boot', `initrd.img-${kver}`));
  const passwd = path.join(rootfs, 'etc/passwd');
  await writeFile(passwd, withLoginShell(await readFile(passwd, 'utf8'), 'root', '/bin/sh'));
  return kver;
}

/** The image's packages and versions, from its dpkg database. */
async function packageList(rootfs: string): Promise<Record<string, string>> {
  // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own format, not a template
  const q = await run('dpkg-query', [`--admindir=${path.join(rootfs, 'var/lib/dpkg')}`, '-W', '-f', '${Package}\t${Version}\n'], { timeoutMs: 60_000 });
  return Object.fromEntries(
    q.stdout
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => l.split('\t') as [string, string]),
  );
}

/** The rootfs as ext4 (mkfs.ext4 -d), then a zstd-compressed qcow2. */
async function diskImage(recipe: Recipe, rootfs: string, tmp: string, out: string, step: Log): Promise<void> {
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
  const qi = await run('qemu-img', ['convert', '-c', '-f', 'raw', '-O', 'qcow2', '-o', 'compression_type=zstd,cluster_size=4096', raw, out], {
    timeoutMs: 10 * 60_000,
  });
  if (qi.exitCode !== 0) throw new KmodvmError('image', `qemu-img convert failed (${qi.reason})`, { evidence: tail(qi.stderr, 15) });
  await rm(raw);
}
