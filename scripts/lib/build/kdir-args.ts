// What make is told of the kernel tree (#29.8).
/**
 * The kernel tree, under each name upstream Makefiles read it by (KDIR;
 * lttng's KERNELDIR; v4l2loopback's and jool's KERNEL_DIR; KSRC;
 * KERNEL_SRC), so none needs a shim (#29.8). KERNELRELEASE is not among
 * them: kbuild sets it itself, and a Makefile's `ifneq ($(KERNELRELEASE),)`
 * would take the outer make for kbuild's.
 */
export const KDIR_NAMES = ['KDIR', 'KERNELDIR', 'KERNEL_DIR', 'KSRC', 'KERNEL_SRC'] as const;
export const kdirArgs = (kdir: string): string[] => KDIR_NAMES.map((n) => `${n}=${kdir}`);
