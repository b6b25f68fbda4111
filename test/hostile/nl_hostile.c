// SPDX-License-Identifier: MIT
/*
 * nl_hostile CASE [PROTO]: one hostile-input case against the netlink demo
 * module. Prints "PASS CASE: detail" and exits 0 when the kernel behaved as
 * it must, or "FAIL CASE: detail" and exits 1. Every message carries the
 * sender's own port in nlmsg_pid, as a well-behaved client's would, except
 * in the cases about that field (spoofed-pid, zero-pid). Driven by
 * test/e2e/hostile.test.ts; docs/netlink.md lists the cases.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/netlink.h>

static int proto = 31;
static const char *cname;

static void result(int ok, const char *fmt, ...)
{
	va_list ap;

	printf("%s %s: ", ok ? "PASS" : "FAIL", cname);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	exit(ok ? 0 : 1);
}

static int open_sock(unsigned int port, int timeout_ms)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_pid = port };
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = (timeout_ms % 1000) * 1000 };
	int sd = socket(AF_NETLINK, SOCK_RAW, proto);

	if (sd < 0) result(0, "socket(): %s", strerror(errno));
	if (bind(sd, (struct sockaddr *)&a, sizeof(a)) < 0) result(0, "bind(): %s", strerror(errno));
	if (setsockopt(sd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) result(0, "SO_RCVTIMEO: %s", strerror(errno));
	return sd;
}

static unsigned int port_of(int sd)
{
	struct sockaddr_nl a;
	socklen_t l = sizeof(a);

	if (getsockname(sd, (struct sockaddr *)&a, &l) < 0) result(0, "getsockname(): %s", strerror(errno));
	return a.nl_pid;
}

static ssize_t send_raw(int sd, const void *buf, size_t len)
{
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };

	return sendto(sd, buf, len, 0, (struct sockaddr *)&k, sizeof(k));
}

/* A message of payload length plen, filled with fill, with nlmsg_pid = pid. */
static struct nlmsghdr *msg(size_t plen, char fill, unsigned int pid, unsigned int seq)
{
	struct nlmsghdr *h = calloc(1, NLMSG_SPACE(plen));

	if (!h) result(0, "calloc failed");
	h->nlmsg_len = NLMSG_LENGTH(plen);
	h->nlmsg_pid = pid;
	h->nlmsg_seq = seq;
	memset(NLMSG_DATA(h), fill, plen);
	return h;
}

/* Receives one reply: 1 if a well-formed reply from the kernel came, 0 on timeout. */
static int recv_reply(int sd, unsigned int *seq)
{
	char buf[8192];
	struct sockaddr_nl from;
	socklen_t fl = sizeof(from);
	ssize_t n = recvfrom(sd, buf, sizeof(buf), 0, (struct sockaddr *)&from, &fl);
	struct nlmsghdr *h = (struct nlmsghdr *)buf;

	if (n < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK) return 0;
		result(0, "recvfrom(): %s", strerror(errno));
	}
	if (from.nl_pid != 0) result(0, "a reply from port %u, not the kernel", from.nl_pid);
	if (!NLMSG_OK(h, (size_t)n) || h->nlmsg_type != NLMSG_DONE ||
	    strncmp(NLMSG_DATA(h), "Reply from kernel netlink", NLMSG_PAYLOAD(h, 0)) != 0)
		result(0, "a malformed reply of %zd bytes", n);
	if (seq) *seq = h->nlmsg_seq;
	return 1;
}

static void expect_silence(int sd, const char *what)
{
	if (recv_reply(sd, NULL)) result(0, "the kernel answered %s", what);
}

static void expect_replies(int sd, int n, const char *what)
{
	for (int i = 0; i < n; i++)
		if (!recv_reply(sd, NULL)) result(0, "reply %d of %d to %s never came", i + 1, n, what);
}

static int case_short(void)
{
	int sd = open_sock(0, 500);
	char b[8] = { 8, 0, 0, 0 };	/* too short to hold even nlmsg_pid */

	if (send_raw(sd, b, sizeof(b)) < 0) result(0, "sendto: %s", strerror(errno));
	expect_silence(sd, "an 8-byte datagram");
	result(1, "8-byte datagram dropped, no reply");
	return 0;
}

static int case_len(int too_big)
{
	int sd = open_sock(0, 500);
	struct nlmsghdr *h = msg(84, 'x', port_of(sd), 0);

	h->nlmsg_len = too_big ? 4000 : 8;
	if (send_raw(sd, h, NLMSG_SPACE(84)) < 0) result(0, "sendto: %s", strerror(errno));
	expect_silence(sd, too_big ? "nlmsg_len larger than the datagram" : "nlmsg_len smaller than a header");
	result(1, "nlmsg_len %u in a %d-byte datagram dropped", h->nlmsg_len, NLMSG_SPACE(84));
	return 0;
}

static int case_payload(size_t plen)
{
	int sd = open_sock(0, 2000);
	int sz = (int)plen + 4096;
	struct nlmsghdr *h = msg(plen, 'A', port_of(sd), 0);

	setsockopt(sd, SOL_SOCKET, SO_SNDBUF, &sz, sizeof(sz));
	if (send_raw(sd, h, NLMSG_SPACE(plen)) < 0) result(0, "sendto %zu bytes: %s", NLMSG_SPACE(plen), strerror(errno));
	expect_replies(sd, 1, "a payload without NUL");
	result(1, "%zu-byte payload without NUL answered", plen);
	return 0;
}

static int case_two(void)
{
	int sd = open_sock(0, 1000);
	char buf[2 * NLMSG_SPACE(32)];
	struct nlmsghdr *a = msg(32, 'a', port_of(sd), 1), *b = msg(32, 'b', port_of(sd), 2);

	memcpy(buf, a, NLMSG_SPACE(32));
	memcpy(buf + NLMSG_SPACE(32), b, NLMSG_SPACE(32));
	if (send_raw(sd, buf, sizeof(buf)) < 0) result(0, "sendto: %s", strerror(errno));
	expect_replies(sd, 2, "two messages in one datagram");
	expect_silence(sd, "more than twice");
	result(1, "two messages in one datagram, two replies");
	return 0;
}

static int case_pid(int zero)
{
	int victim = open_sock(0, 500), sd = open_sock(0, 1000);
	struct nlmsghdr *h = msg(16, 'p', zero ? 0 : port_of(victim), 0);

	if (send_raw(sd, h, NLMSG_SPACE(16)) < 0) result(0, "sendto: %s", strerror(errno));
	expect_replies(sd, 1, zero ? "a zeroed nlmsg_pid" : "a spoofed nlmsg_pid");
	if (!zero) expect_silence(victim, "the spoofed victim socket");
	result(1, zero ? "nlmsg_pid 0: the reply went to the sender, the kernel survived"
			: "nlmsg_pid naming port %u: the victim got nothing, the sender got the reply", port_of(victim));
	return 0;
}

static int case_flood(int n)
{
	int sd = open_sock(0, 200), got = 0, sent = 0;
	struct nlmsghdr *h = msg(16, 'f', port_of(sd), 0);

	int overruns = 0;

	for (int i = 0; i < n; i++)
		if (send_raw(sd, h, NLMSG_SPACE(16)) > 0) sent++;
	/* Our receive buffer overflowed: netlink reports that once as ENOBUFS. */
	for (;;) {
		char buf[256];
		ssize_t r = recv(sd, buf, sizeof(buf), 0);

		if (r > 0) { got++; continue; }
		if (r < 0 && errno == ENOBUFS) { overruns++; continue; }
		break;
	}
	if (sent != n) result(0, "only %d of %d sends went through", sent, n);
	result(1, "%d messages sent unread; %d replies were queued, the rest dropped (%d overrun reports)", n, got, overruns);
	return 0;
}

static int case_concurrent(int procs, int each)
{
	for (int p = 0; p < procs; p++) {
		if (fork() == 0) {
			int sd = open_sock(0, 5000);

			for (int i = 0; i < each; i++) {
				struct nlmsghdr *h = msg(16, 'c', port_of(sd), (unsigned int)i);
				unsigned int seq;

				if (send_raw(sd, h, NLMSG_SPACE(16)) < 0) _exit(2);
				if (!recv_reply(sd, &seq) || seq != (unsigned int)i) _exit(3);
				free(h);
			}
			_exit(0);
		}
	}
	int bad = 0, st;

	while (wait(&st) > 0)
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) bad++;
	if (bad) result(0, "%d of %d senders missed replies", bad, procs);
	result(1, "%d senders x %d messages, every reply to its own sender in order", procs, each);
	return 0;
}

static int case_blocked_rmmod(const char *mod)
{
	int sd = open_sock(0, 3000), p[2], st;
	pid_t child;
	char c;

	if (pipe(p) < 0) result(0, "pipe: %s", strerror(errno));
	child = fork();
	if (child == 0) {
		/* Wait until the parent is about to block, then unload. */
		if (read(p[0], &c, 1) != 1) _exit(9);
		execlp("rmmod", "rmmod", mod, (char *)NULL);
		_exit(8);
	}
	if (write(p[1], "x", 1) != 1) result(0, "pipe write failed");
	if (recv_reply(sd, NULL)) result(0, "a reply came from nowhere");
	waitpid(child, &st, 0);
	if (!WIFEXITED(st)) result(0, "rmmod died");
	/* An open user socket on the protocol holds a reference on the module,
	 * so rmmod is refused (EBUSY) until the client closes: that is fine.
	 * What matters is that the client got a timeout and nothing crashed. */
	result(1, "rmmod while a client was blocked in recv: rmmod %s, the client timed out",
	       WEXITSTATUS(st) == 0 ? "succeeded" : "was refused (module in use)");
	return 0;
}

/* The control types (NOOP, ERROR, DONE, OVERRUN) get no answer; type 0 after them still does. */
static int case_control(void)
{
	int sd = open_sock(0, 1000);
	unsigned short types[] = { NLMSG_NOOP, NLMSG_ERROR, NLMSG_DONE, NLMSG_OVERRUN };

	for (unsigned int i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		struct nlmsghdr *h = msg(16, 'c', port_of(sd), i + 1);

		h->nlmsg_type = types[i];
		if (send_raw(sd, h, h->nlmsg_len) < 0) result(0, "sendto(): %s", strerror(errno));
		expect_silence(sd, "a control message");
		free(h);
	}
	{
		struct nlmsghdr *h = msg(16, 'c', port_of(sd), 9);

		if (send_raw(sd, h, h->nlmsg_len) < 0) result(0, "sendto(): %s", strerror(errno));
		expect_replies(sd, 1, "a type-0 message after the control ones");
		free(h);
	}
	result(1, "control messages (NOOP, ERROR, DONE, OVERRUN) dropped unanswered; type 0 answered");
	return 0;
}

int main(int argc, char **argv)
{
	if (argc < 2) {
		fprintf(stderr, "usage: %s CASE [PROTO]\n", argv[0]);
		return 2;
	}
	cname = argv[1];
	if (argc > 2) proto = atoi(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (!strcmp(cname, "short")) return case_short();
	if (!strcmp(cname, "len-too-big")) return case_len(1);
	if (!strcmp(cname, "len-too-small")) return case_len(0);
	if (!strcmp(cname, "no-nul")) return case_payload(1024);
	if (!strcmp(cname, "near-max")) return case_payload(200 * 1024);
	if (!strcmp(cname, "two-in-one")) return case_two();
	if (!strcmp(cname, "spoofed-pid")) return case_pid(0);
	if (!strcmp(cname, "zero-pid")) return case_pid(1);
	if (!strcmp(cname, "control")) return case_control();
	if (!strcmp(cname, "flood")) return case_flood(20000);
	if (!strcmp(cname, "concurrent")) return case_concurrent(8, 300);
	if (!strcmp(cname, "blocked-rmmod")) return case_blocked_rmmod(argc > 3 ? argv[3] : "netlink_simple_intf");
	fprintf(stderr, "unknown case %s\n", cname);
	return 2;
}
