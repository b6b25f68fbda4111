// SPDX-License-Identifier: GPL-2.0
/*
 * The edu driver's app: each command exercises one path of the driver
 * through /dev/edu0 and exits non-zero, saying why, when the result is
 * wrong.
 *
 *   edu-app info          the identification and liveness registers, the interrupt kind
 *   edu-app fact N        N! by the device, announced by its interrupt
 *   edu-app dma [LEN]     LEN bytes to the device and back by DMA
 *   edu-app held-remove   remove() while this app holds the device open:
 *                         unbind it, see -ENODEV, close, bind it again
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "edu_ioctl.h"

#define DEV "/dev/edu0"
#define DRV "/sys/bus/pci/drivers/edu"

static int open_dev(void)
{
	int fd = open(DEV, O_RDWR);

	if (fd < 0) {
		fprintf(stderr, "edu-app: %s: %s\n", DEV, strerror(errno));
		exit(2);
	}
	return fd;
}

static int info(void)
{
	struct edu_info i;
	int fd = open_dev();

	if (ioctl(fd, EDU_IOC_INFO, &i) < 0) {
		perror("edu-app: EDU_IOC_INFO");
		return 1;
	}
	printf("edu v%u.%u\n", i.ident >> 24, (i.ident >> 16) & 0xff);
	printf("liveness %s\n", i.live_out == ~i.live_in ? "ok" : "wrong");
	printf("interrupt %s\n", i.irq_msi ? "MSI" : "INTx");
	close(fd);
	return i.live_out == ~i.live_in ? 0 : 1;
}

static unsigned int factorial(unsigned int n)
{
	unsigned int r = 1;

	while (n > 1)
		r *= n--;
	return r;
}

static int fact(unsigned int n)
{
	struct edu_fact f = { .n = n };
	int fd = open_dev();

	if (ioctl(fd, EDU_IOC_FACT, &f) < 0) {
		perror("edu-app: EDU_IOC_FACT");
		return 1;
	}
	printf("%u! = %u\n", n, f.result);
	close(fd);
	if (f.result != factorial(n)) {
		fprintf(stderr, "edu-app: the device said %u, not %u\n", f.result, factorial(n));
		return 1;
	}
	return 0;
}

static int dma(unsigned int len)
{
	static unsigned char buf[EDU_DMA_MAX], want[EDU_DMA_MAX];
	struct edu_dma d = { .buf = (unsigned long)buf, .len = len };
	int fd = open_dev();
	unsigned int k;

	for (k = 0; k < len; k++)
		want[k] = buf[k] = (unsigned char)(k * 7 + 3);
	if (ioctl(fd, EDU_IOC_DMA, &d) < 0) {
		perror("edu-app: EDU_IOC_DMA");
		return 1;
	}
	close(fd);
	if (memcmp(buf, want, len)) {
		fprintf(stderr, "edu-app: the bytes that came back by DMA differ\n");
		return 1;
	}
	printf("dma %u bytes: same bytes back\n", len);
	/* Bad input is refused, not trusted. */
	fd = open_dev();
	d.len = EDU_DMA_MAX + 1;
	if (ioctl(fd, EDU_IOC_DMA, &d) == 0 || errno != EINVAL) {
		fprintf(stderr, "edu-app: a DMA of %u bytes was not refused with EINVAL\n", d.len);
		return 1;
	}
	close(fd);
	printf("dma %u bytes: refused\n", EDU_DMA_MAX + 1);
	return 0;
}

/* The PCI address of /dev/edu0's device. */
static void address(char *out, size_t n)
{
	char link[256];
	ssize_t len = readlink("/sys/class/misc/edu0/device", link, sizeof(link) - 1);
	const char *slash;

	if (len < 0) {
		perror("edu-app: /sys/class/misc/edu0/device");
		exit(2);
	}
	link[len] = 0;
	slash = strrchr(link, '/');
	snprintf(out, n, "%s", slash ? slash + 1 : link);
}

static int write_file(const char *file, const char *text)
{
	int fd = open(file, O_WRONLY);
	ssize_t w = fd < 0 ? -1 : write(fd, text, strlen(text));

	if (w < 0)
		fprintf(stderr, "edu-app: %s: %s\n", file, strerror(errno));
	if (fd >= 0)
		close(fd);
	return w < 0 ? -1 : 0;
}

static int held_remove(void)
{
	struct edu_info i;
	char addr[256];
	int fd = open_dev();

	address(addr, sizeof(addr));
	if (write_file(DRV "/unbind", addr))
		return 1;
	if (ioctl(fd, EDU_IOC_INFO, &i) == 0 || errno != ENODEV) {
		fprintf(stderr, "edu-app: an ioctl after remove() did not fail with ENODEV\n");
		return 1;
	}
	printf("after remove: %s\n", strerror(ENODEV));
	close(fd);
	if (write_file(DRV "/bind", addr))
		return 1;
	return info();
}

int main(int argc, char **argv)
{
	if (argc >= 2 && !strcmp(argv[1], "info"))
		return info();
	if (argc == 3 && !strcmp(argv[1], "fact"))
		return fact((unsigned int)strtoul(argv[2], NULL, 0));
	if (argc >= 2 && !strcmp(argv[1], "dma"))
		return dma(argc == 3 ? (unsigned int)strtoul(argv[2], NULL, 0) % (EDU_DMA_MAX + 1) : EDU_DMA_MAX);
	if (argc == 2 && !strcmp(argv[1], "held-remove"))
		return held_remove();
	fprintf(stderr, "usage: edu-app info | fact N | dma [LEN] | held-remove\n");
	return 2;
}
