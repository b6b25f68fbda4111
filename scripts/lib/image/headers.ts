// The image's exported kbuild tree: where it is, how it is copied out of
// the root file system, and the compiler it names (the host build uses it).
import { cp, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import path from 'node:path';

/** The gcc major version a kernel was built with, from its generated autoconf.h ("#define CONFIG_GCC_VERSION 120200"). */
export function kernelGccMajor(autoconf: string): number | undefined {
  const m = /^#define CONFIG_GCC_VERSION (\d+)$/m.exec(autoconf);
  return m ? Math.floor(Number(m[1]) / 10000) : undefined;
}

/** Where an image keeps its exported kbuild tree (the linux-headers-<kver>-amd64 directory). */
export function headersKdir(imageDir: string, kver: string): string {
  return path.join(imageDir, 'headers', 'usr/src', `linux-headers-${kver}`);
}

/** Copies the kbuild trees out of the rootfs, keeping their layout (their symlinks are relative), and points the -amd64 Makefile at the copied -common tree, by a relative path. */
export async function exportHeaders(rootfs: string, stagingImageDir: string, kver: string): Promise<void> {
  const top = path.join(stagingImageDir, 'headers');
  const kdir = path.join(rootfs, 'usr/src', `linux-headers-${kver}`);
  const mk = await readFile(path.join(kdir, 'Makefile'), 'utf8');
  const common = /^include (\/usr\/src\/\S+)\/Makefile$/m.exec(mk)?.[1];
  const trees = [`usr/src/linux-headers-${kver}`, ...(common ? [common.slice(1)] : [])];
  for (const d of await readdir(path.join(rootfs, 'usr/lib'))) if (d.startsWith('linux-kbuild-')) trees.push(`usr/lib/${d}`);
  for (const t of trees) {
    await mkdir(path.dirname(path.join(top, t)), { recursive: true });
    await cp(path.join(rootfs, t), path.join(top, t), { recursive: true, verbatimSymlinks: true });
  }
  if (common) {
    // Relative (make -C runs it in its own directory): the tree works wherever it is, an imported image's too, and
    // names nothing outside itself, so the build sandbox needs only this tree (build/host-kbuild.ts kbuildReadable).
    await writeFile(
      path.join(top, 'usr/src', `linux-headers-${kver}`, 'Makefile'),
      mk.replace(common, path.relative(path.join('/usr/src', `linux-headers-${kver}`), common)),
    );
  }
}

/**
 * An image exported before the include was relative names the exporting
 * machine's cache in its -amd64 Makefile: import makes it relative, so the
 * tree works on the seat (the files were checked against export.json first).
 */
export async function relativeCommonInclude(imageDir: string): Promise<boolean> {
  const src = path.join(imageDir, 'headers', 'usr/src');
  let changed = false;
  for (const d of await readdir(src).catch(() => [] as string[])) {
    const mkFile = path.join(src, d, 'Makefile');
    const mk = await readFile(mkFile, 'utf8').catch(() => '');
    const abs = /^include (\/\S+\/headers\/usr\/src\/(linux-headers-[^/\s]+))\/Makefile$/m.exec(mk);
    if (!abs) continue;
    await writeFile(mkFile, mk.replace(abs[1], `../${abs[2]}`));
    changed = true;
  }
  return changed;
}
