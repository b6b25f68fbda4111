import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { appendFile, readFile, rename } from 'node:fs/promises';
import path from 'node:path';
import { ensureDebugKernel, modulesCpioOf } from '../build/debug-kernel.ts';
import type { Config } from '../core/config.ts';
import type { ImageInfo } from '../image/image.ts';
import { genericInitrd } from '../image/initrd.ts';

/** --kernel NAME-debug: the debug kernel, built first when it is not cached, then booted as --kernel-image with its own tree and boot parameters. */
export async function withDebugKernel(c: Config, log: (l: string) => void): Promise<Config> {
  if (!c.debugKernel || c.kernelImage) return c;
  const k = await ensureDebugKernel(c, log);
  log(`kernel: the debug kernel ${k.name} (${k.version}, ${k.dir})`);
  return { ...c, kernelImage: k.bzImage, kernelBuildDir: k.buildDir, kernelArgs: [...c.kernelArgs, ...k.kernelArgs] };
}

/**
 * What the report says the kernel was. The debug kernel's upstream version
 * against the image's own kernel's (its Debian package's), both named when
 * they differ (#27.4): a bug the debug kernel catches may then be one the
 * stock kernel does not have.
 */
export function kernelLabel(c: Pick<Config, 'debugKernel'>, byoVersion: string, img?: Pick<ImageInfo['manifest'], 'kernelVersion' | 'packages'>): string {
  if (!c.debugKernel) return `${byoVersion} (--kernel-image)`;
  const upstream = (v: string | undefined): string | undefined => /^\d+\.\d+(\.\d+)?/.exec(v ?? '')?.[0];
  const stockPkg = img?.packages[`linux-image-${img.kernelVersion}`];
  const [mine, stock] = [upstream(byoVersion), upstream(stockPkg)];
  if (!img || !stock || !mine) return `${byoVersion} (debug kernel ${c.debugKernel})`;
  return mine === stock
    ? `${byoVersion} (debug kernel ${c.debugKernel}, from the source of the image's kernel ${img.kernelVersion}, ${stock})`
    : `${byoVersion} (debug kernel ${c.debugKernel}, source ${mine}; the image's kernel ${img.kernelVersion} is ${stockPkg}: they differ)`;
}

/** --kernel-image: the initrd to boot it with, and its version as its build tree says. */
export async function byoKernel(
  c: Pick<Config, 'debugKernel' | 'kernelBuildDir' | 'kernelInitrd' | 'root'>,
  img: ImageInfo,
  runDir: string,
): Promise<{ initrd: string; version: string }> {
  const uts = await readFile(path.join(c.kernelBuildDir, 'include/generated/utsrelease.h'), 'utf8').catch(() => '');
  const version =
    /UTS_RELEASE "([^"]+)"/.exec(uts)?.[1] ??
    (await readFile(path.join(c.kernelBuildDir, 'include/config/kernel.release'), 'utf8').catch(() => 'unknown')).trim();
  if (c.kernelInitrd) return { initrd: c.kernelInitrd, version };
  const initScript = await readFile(path.join(c.root, 'qemu/initrd-init.sh'), 'utf8');
  if (c.debugKernel) return { initrd: await debugInitrd(c, img, initScript, runDir), version };
  const out = path.join(runDir, 'initrd-generic.cpio');
  await genericInitrd({ leanInitrd: img.initrdLean, initScript, work: path.join(runDir, 'initrd-generic'), out });
  return { initrd: out, version };
}

/**
 * The debug kernel's initrd, kept beside it under a name of its inputs (the
 * image, the init script), so a saved guest of the debug kernel is keyed
 * by a path that stays (#27.4): the generic initrd, then the kernel's own
 * modules (fixtures, subsystem cores) as a second newc archive, which the
 * kernel unpacks over the first; the initrd's /init copies
 * lib/modules/<version> into the guest's root. Written beside and renamed.
 */
async function debugInitrd(c: Pick<Config, 'kernelBuildDir'>, img: ImageInfo, initScript: string, runDir: string): Promise<string> {
  const key = createHash('sha256').update(`${img.key}\0${initScript}`).digest('hex').slice(0, 16);
  const out = path.join(path.dirname(c.kernelBuildDir), `initrd-${key}.cpio`);
  if (existsSync(out)) return out;
  const tmp = `${out}.tmp-${process.pid}`;
  await genericInitrd({ leanInitrd: img.initrdLean, initScript, work: path.join(runDir, 'initrd-generic'), out: tmp });
  await appendFile(tmp, await readFile(modulesCpioOf(c.kernelBuildDir)));
  await rename(tmp, out);
  return out;
}
