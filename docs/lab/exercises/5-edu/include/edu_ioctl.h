/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The interface between the edu driver (driver/edu.c) and its app
 * (app/edu-app.c): the one header both sides build with.
 */
#ifndef EDU_IOCTL_H
#define EDU_IOCTL_H

#include <linux/ioctl.h>
#include <linux/types.h>

/*
 * The most one DMA transfer moves. The device's buffer is 4096 bytes, but
 * QEMU's edu (7.2, hw/misc/edu.c edu_check_range) takes a transfer that
 * ends at the buffer's very end as out of bounds and stops QEMU itself.
 */
#define EDU_DMA_MAX 4095

struct edu_info {
	__u32 ident;	/* BAR0 0x00: 0xRRrr00ed, major and minor version */
	__u32 live_in;	/* what was written to the liveness register */
	__u32 live_out;	/* what it read back: the bitwise inverse */
	__u32 irq_msi;	/* 1 when the interrupt is MSI, 0 for INTx */
	__u32 irqs;	/* interrupts handled since probe */
};

struct edu_fact {
	__u32 n;	/* in */
	__u32 result;	/* out: n!, by the device, announced by its interrupt */
};

struct edu_dma {
	__u64 buf;	/* user address of len bytes: sent to the device and read back */
	__u32 len;	/* 1..EDU_DMA_MAX */
	__u32 pad;
};

#define EDU_IOC_MAGIC 0xED
#define EDU_IOC_INFO _IOR(EDU_IOC_MAGIC, 1, struct edu_info)
#define EDU_IOC_FACT _IOWR(EDU_IOC_MAGIC, 2, struct edu_fact)
#define EDU_IOC_DMA _IOWR(EDU_IOC_MAGIC, 3, struct edu_dma)

#endif
