// SPDX-License-Identifier: GPL-2.0
/*
 * kmodvm-fail-nth N MODULE.ko [PARAM...]: loads MODULE with init_module(2)
 * with the N-th slab allocation of that one system call made to fail
 * (/proc/thread-self/fail-nth, Documentation/fault-injection/). The file is
 * read and the parameters joined first, so only the load's own allocations
 * count: the loader's, then the module's init. Prints one line,
 *   fail-nth: N=3 injected init_module=-1 errno=12 left=0
 * "injected" or "not-reached" (the load made fewer than N allocations: the
 * sweep is done); left is what remained of N, so a load with a huge N counts
 * the load's allocations. Exits 0 when the module loaded, 1 when init_module
 * failed, 2 on bad usage. Built in the guest by kmodvm --fail-nth.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

int main(int argc, char **argv)
{
	char params[4096] = "", nbuf[32], left[32] = "";
	struct stat st;
	long n, r;
	int fd, nth, e, k;
	char *image;

	if (argc < 3 || (n = strtol(argv[1], NULL, 10)) < 1) {
		fprintf(stderr, "usage: %s N MODULE.ko [PARAM...]\n", argv[0]);
		return 2;
	}
	fd = open(argv[2], O_RDONLY);
	if (fd < 0 || fstat(fd, &st) < 0 || !(image = malloc(st.st_size)) || read(fd, image, st.st_size) != st.st_size) {
		perror(argv[2]);
		return 2;
	}
	for (k = 3; k < argc; k++) {
		if (strlen(params) + strlen(argv[k]) + 2 > sizeof(params)) {
			fprintf(stderr, "parameters too long\n");
			return 2;
		}
		if (k > 3)
			strcat(params, " ");
		strcat(params, argv[k]);
	}
	nth = open("/proc/thread-self/fail-nth", O_RDWR);
	if (nth < 0) {
		perror("/proc/thread-self/fail-nth (needs CONFIG_FAULT_INJECTION)");
		return 2;
	}
	snprintf(nbuf, sizeof(nbuf), "%ld", n);
	if (write(nth, nbuf, strlen(nbuf)) < 0) {
		perror("fail-nth");
		return 2;
	}
	r = syscall(SYS_init_module, image, (unsigned long)st.st_size, params);
	e = errno;
	if (pread(nth, left, sizeof(left) - 1, 0) < 0)
		strcpy(left, "?");
	if (write(nth, "0", 1) < 0)
		perror("fail-nth reset");
	printf("fail-nth: N=%ld %s init_module=%ld errno=%d left=%ld\n", n, atol(left) == 0 ? "injected" : "not-reached", r, r ? e : 0, atol(left));
	return r ? 1 : 0;
}
