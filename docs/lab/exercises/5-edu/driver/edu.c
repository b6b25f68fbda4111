// SPDX-License-Identifier: GPL-2.0
/*
 * A PCI driver for QEMU's "edu" device (hw/misc/edu.c, docs/specs/edu.rst),
 * kmodvm's second demo: probe and remove, BAR0 MMIO (identification and
 * liveness), the factorial unit and its interrupt (MSI, else INTx), a DMA
 * transfer, and a character device, /dev/eduN, for the app.
 *
 * The lifetime rule a driver must get right: remove() may run while a user
 * holds the device open (unbind, hot-unplug). Each device's state is
 * reference-counted: probe holds one reference and every open file another.
 * remove() marks the state gone under its lock, silences the device and
 * frees the interrupt, and drops probe's reference; an ioctl on a file
 * opened before then gets -ENODEV, and the last close frees the state.
 *
 * Nothing from user space is trusted: every length is checked against the
 * device's buffer before a copy.
 */
#include <linux/completion.h>
#include <linux/dma-mapping.h>
#include <linux/fs.h>
#include <linux/idr.h>
#include <linux/interrupt.h>
#include <linux/io.h>
#include <linux/kref.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "edu_ioctl.h"

#define EDU_VENDOR 0x1234
#define EDU_DEVICE 0x11e8

/* BAR0 registers (docs/specs/edu.rst). */
#define EDU_IDENT 0x00
#define EDU_LIVE 0x04
#define EDU_FACT 0x08
#define EDU_STATUS 0x20
#define EDU_STATUS_BUSY 0x01
#define EDU_STATUS_IRQ_FACT 0x80
#define EDU_IRQ_STATUS 0x24
#define EDU_IRQ_ACK 0x64
#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_COUNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_DMA_START 0x01
#define EDU_DMA_TO_RAM 0x02
#define EDU_DMA_IRQ 0x04

#define EDU_IRQ_FACT 0x00000001
#define EDU_IRQ_DMA 0x00000100
/* Where the device's own buffer is, in its DMA address space. */
#define EDU_BUF_ADDR 0x40000


static DEFINE_IDA(edu_ida);

struct edu {
	struct kref ref;
	struct mutex lock;	/* serialises the device's units, and gone */
	bool gone;		/* remove() ran: the hardware is not ours any more */
	struct pci_dev *pdev;
	void __iomem *bar;
	int irq;
	bool msi;
	int nr;
	char name[16];
	struct miscdevice misc;
	struct completion fact_done;
	struct completion dma_done;
	atomic_t irqs;
	void *dma_buf;
	dma_addr_t dma_addr;
};

static void edu_free(struct kref *ref)
{
	struct edu *edu = container_of(ref, struct edu, ref);

	ida_free(&edu_ida, edu->nr);
	kfree(edu);
}

/*
 * EXERCISE 5, part 1: the interrupt handler.
 * Read the device's interrupt status register (EDU_IRQ_STATUS). When it
 * is 0 the interrupt is not ours: return IRQ_NONE. Otherwise write the
 * same bits to EDU_IRQ_ACK (the device raises the interrupt until it is
 * acknowledged), count it in edu->irqs, complete edu->fact_done for
 * EDU_IRQ_FACT and edu->dma_done for EDU_IRQ_DMA, and return IRQ_HANDLED.
 */
static irqreturn_t edu_irq(int irq, void *data)
{
	struct edu *edu = data;

	(void)edu;
	return IRQ_NONE;
}

static int edu_open(struct inode *inode, struct file *file)
{
	struct edu *edu = container_of(file->private_data, struct edu, misc);

	kref_get(&edu->ref);
	file->private_data = edu;
	return 0;
}

static int edu_release(struct inode *inode, struct file *file)
{
	struct edu *edu = file->private_data;

	kref_put(&edu->ref, edu_free);
	return 0;
}

static long edu_wait(struct completion *done)
{
	return wait_for_completion_timeout(done, msecs_to_jiffies(5000)) ? 0 : -ETIMEDOUT;
}

static long edu_fact(struct edu *edu, struct edu_fact __user *arg)
{
	struct edu_fact f;
	long ret;

	if (copy_from_user(&f, arg, sizeof(f)))
		return -EFAULT;
	reinit_completion(&edu->fact_done);
	iowrite32(EDU_STATUS_IRQ_FACT, edu->bar + EDU_STATUS);
	iowrite32(f.n, edu->bar + EDU_FACT);
	ret = edu_wait(&edu->fact_done);
	if (ret)
		return ret;
	f.result = ioread32(edu->bar + EDU_FACT);
	return copy_to_user(arg, &f, sizeof(f)) ? -EFAULT : 0;
}

static long edu_dma_one(struct edu *edu, u64 src, u64 dst, u32 len, u32 dir)
{
	reinit_completion(&edu->dma_done);
	writeq(src, edu->bar + EDU_DMA_SRC);
	writeq(dst, edu->bar + EDU_DMA_DST);
	writeq(len, edu->bar + EDU_DMA_COUNT);
	writeq(EDU_DMA_START | EDU_DMA_IRQ | dir, edu->bar + EDU_DMA_CMD);
	return edu_wait(&edu->dma_done);
}

/* The user's bytes into the device's buffer and back out, through the DMA engine both ways. */
static long edu_dma(struct edu *edu, struct edu_dma __user *arg)
{
	struct edu_dma d;
	void __user *buf;
	long ret;

	if (copy_from_user(&d, arg, sizeof(d)))
		return -EFAULT;
	if (d.len == 0 || d.len > EDU_DMA_MAX || d.pad)
		return -EINVAL;
	buf = u64_to_user_ptr(d.buf);
	if (copy_from_user(edu->dma_buf, buf, d.len))
		return -EFAULT;
	ret = edu_dma_one(edu, edu->dma_addr, EDU_BUF_ADDR, d.len, 0);
	if (ret)
		return ret;
	memset(edu->dma_buf, 0, d.len);
	ret = edu_dma_one(edu, EDU_BUF_ADDR, edu->dma_addr, d.len, EDU_DMA_TO_RAM);
	if (ret)
		return ret;
	return copy_to_user(buf, edu->dma_buf, d.len) ? -EFAULT : 0;
}

static long edu_info(struct edu *edu, struct edu_info __user *arg)
{
	struct edu_info info = { .live_in = 0x5a5aa5a5 };

	info.ident = ioread32(edu->bar + EDU_IDENT);
	iowrite32(info.live_in, edu->bar + EDU_LIVE);
	info.live_out = ioread32(edu->bar + EDU_LIVE);
	info.irq_msi = edu->msi;
	info.irqs = atomic_read(&edu->irqs);
	return copy_to_user(arg, &info, sizeof(info)) ? -EFAULT : 0;
}

static long edu_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct edu *edu = file->private_data;
	void __user *uarg = (void __user *)arg;
	long ret;

	mutex_lock(&edu->lock);
	if (edu->gone) {
		ret = -ENODEV;
		goto out;
	}
	switch (cmd) {
	case EDU_IOC_INFO:
		ret = edu_info(edu, uarg);
		break;
	case EDU_IOC_FACT:
		ret = edu_fact(edu, uarg);
		break;
	case EDU_IOC_DMA:
		ret = edu_dma(edu, uarg);
		break;
	default:
		ret = -ENOTTY;
	}
out:
	mutex_unlock(&edu->lock);
	return ret;
}

static const struct file_operations edu_fops = {
	.owner = THIS_MODULE,
	.open = edu_open,
	.release = edu_release,
	.unlocked_ioctl = edu_ioctl,
	.compat_ioctl = compat_ptr_ioctl,
	.llseek = noop_llseek,
};

static int edu_check(struct edu *edu)
{
	u32 ident = ioread32(edu->bar + EDU_IDENT);
	u32 probe = 0x12345678;

	if ((ident & 0xff) != 0xed) {
		dev_err(&edu->pdev->dev, "not an edu device: ident %#010x\n", ident);
		return -ENODEV;
	}
	iowrite32(probe, edu->bar + EDU_LIVE);
	if (ioread32(edu->bar + EDU_LIVE) != ~probe) {
		dev_err(&edu->pdev->dev, "the liveness register does not answer\n");
		return -EIO;
	}
	dev_info(&edu->pdev->dev, "edu v%u.%u, liveness ok\n", ident >> 24, (ident >> 16) & 0xff);
	return 0;
}

static int edu_setup_irq(struct edu *edu)
{
	struct pci_dev *pdev = edu->pdev;
	int ret = pci_alloc_irq_vectors(pdev, 1, 1, PCI_IRQ_ALL_TYPES);

	if (ret < 0)
		return ret;
	edu->msi = pdev->msi_enabled;
	edu->irq = pci_irq_vector(pdev, 0);
	ret = request_irq(edu->irq, edu_irq, edu->msi ? 0 : IRQF_SHARED, edu->name, edu);
	if (ret)
		pci_free_irq_vectors(pdev);
	return ret;
}

static int edu_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct edu *edu;
	int ret;

	edu = kzalloc(sizeof(*edu), GFP_KERNEL);
	if (!edu)
		return -ENOMEM;
	kref_init(&edu->ref);
	mutex_init(&edu->lock);
	init_completion(&edu->fact_done);
	init_completion(&edu->dma_done);
	edu->pdev = pdev;
	edu->nr = ida_alloc(&edu_ida, GFP_KERNEL);
	if (edu->nr < 0) {
		kfree(edu);
		return edu->nr;
	}
	snprintf(edu->name, sizeof(edu->name), "edu%d", edu->nr);

	ret = pci_enable_device(pdev);
	if (ret)
		goto err_put;
	ret = pci_request_regions(pdev, "edu");
	if (ret)
		goto err_disable;
	edu->bar = pci_iomap(pdev, 0, 0);
	if (!edu->bar) {
		ret = -ENOMEM;
		goto err_regions;
	}
	ret = edu_check(edu);
	if (ret)
		goto err_unmap;
	/* The device reaches only the low 28 bits of the bus address space (QEMU's dma_mask). */
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(28));
	if (ret)
		goto err_unmap;
	pci_set_master(pdev);
	edu->dma_buf = dma_alloc_coherent(&pdev->dev, EDU_DMA_MAX + 1, &edu->dma_addr, GFP_KERNEL);
	if (!edu->dma_buf) {
		ret = -ENOMEM;
		goto err_master;
	}
	ret = edu_setup_irq(edu);
	if (ret)
		goto err_dma;

	edu->misc.minor = MISC_DYNAMIC_MINOR;
	edu->misc.name = edu->name;
	edu->misc.fops = &edu_fops;
	edu->misc.parent = &pdev->dev;
	ret = misc_register(&edu->misc);
	if (ret)
		goto err_irq;
	pci_set_drvdata(pdev, edu);
	dev_info(&pdev->dev, "/dev/%s, %s interrupt %d\n", edu->name, edu->msi ? "MSI" : "INTx", edu->irq);
	return 0;

err_irq:
	free_irq(edu->irq, edu);
	pci_free_irq_vectors(pdev);
err_dma:
	dma_free_coherent(&pdev->dev, EDU_DMA_MAX + 1, edu->dma_buf, edu->dma_addr);
err_master:
	pci_clear_master(pdev);
err_unmap:
	pci_iounmap(pdev, edu->bar);
err_regions:
	pci_release_regions(pdev);
err_disable:
	pci_disable_device(pdev);
err_put:
	kref_put(&edu->ref, edu_free);
	return ret;
}

static void edu_remove(struct pci_dev *pdev)
{
	struct edu *edu = pci_get_drvdata(pdev);

	/* No new file from here on; files already open see gone. */
	misc_deregister(&edu->misc);
	mutex_lock(&edu->lock);
	edu->gone = true;
	mutex_unlock(&edu->lock);

	/*
	 * EXERCISE 5, part 2: undo edu_setup_irq() before the vectors go.
	 * The handler request_irq() registered must be freed first: a vector
	 * freed under a registered handler is a kernel warning, and the
	 * unbind-bind test catches it.
	 */
	pci_free_irq_vectors(pdev);
	dma_free_coherent(&pdev->dev, EDU_DMA_MAX + 1, edu->dma_buf, edu->dma_addr);
	pci_clear_master(pdev);
	pci_iounmap(pdev, edu->bar);
	pci_release_regions(pdev);
	pci_disable_device(pdev);
	dev_info(&pdev->dev, "removed /dev/%s after %d interrupts\n", edu->name, atomic_read(&edu->irqs));
	kref_put(&edu->ref, edu_free);
}

static const struct pci_device_id edu_ids[] = {
	{ PCI_DEVICE(EDU_VENDOR, EDU_DEVICE) },
	{ }
};
MODULE_DEVICE_TABLE(pci, edu_ids);

static struct pci_driver edu_driver = {
	.name = "edu",
	.id_table = edu_ids,
	.probe = edu_probe,
	.remove = edu_remove,
};
module_pci_driver(edu_driver);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("A driver for QEMU's edu device: MMIO, the factorial unit, MSI, DMA (kmodvm's PCI demo)");
