// SPDX-License-Identifier: MIT
/*
 * netlink_userapp: sends one message to the netlink_simple_intf kernel module
 * and prints its reply. With no options its output is the article's transcript.
 *
 *   -m TEXT   payload (default: "sample user data to send to kernel via netlink")
 *   -n N      send N messages, one reply awaited for each (default 1)
 *   -p PROTO  netlink protocol (default 31)
 *   -t SECS   receive timeout in seconds, 0 = wait forever (default 10)
 *   -q        quiet: print only errors
 *   -h        usage
 * Every failure prints what failed and why, and exits non-zero.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/types.h>
#include <unistd.h>
#include <linux/netlink.h>

#define NETLINK_MY_UNIT_PROTO 31
#define NLSPACE 1024

static const char *prog;
static int quiet;

#define say(...) do { if (!quiet) printf(__VA_ARGS__); } while (0)

static void die(const char *what)
{
	fprintf(stderr, "%s: %s failed: %s\n", prog, what, strerror(errno));
	exit(EXIT_FAILURE);
}

static void usage(FILE *out)
{
	fprintf(out,
		"usage: %s [-m TEXT] [-n COUNT] [-p PROTO] [-t SECS] [-q] [-h]\n"
		"  -m TEXT   payload to send (at most %d bytes)\n"
		"  -n COUNT  messages to send, a reply awaited for each (default 1)\n"
		"  -p PROTO  netlink protocol number (default %d)\n"
		"  -t SECS   receive timeout, 0 waits forever (default 10)\n"
		"  -q        print only errors\n",
		prog, NLSPACE - 1, NETLINK_MY_UNIT_PROTO);
}

static long number(const char *opt, const char *s, long lo, long hi)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || end == s || v < lo || v > hi) {
		fprintf(stderr, "%s: %s wants a number from %ld to %ld, got '%s'\n",
			prog, opt, lo, hi, s);
		exit(2);
	}
	return v;
}

static int send_one(int sd, struct nlmsghdr *nlhdr, struct sockaddr_nl *dest)
{
	struct iovec iov = { .iov_base = nlhdr, .iov_len = nlhdr->nlmsg_len };
	struct msghdr msg = {
		.msg_name = dest, .msg_namelen = sizeof(*dest),
		.msg_iov = &iov, .msg_iovlen = 1,
	};
	ssize_t nsent;

	say("%s: initialized iov structure (nl header folded in)\n", prog);
	say("%s: initialized msghdr structure (iov folded in)\n", prog);
	nsent = sendmsg(sd, &msg, 0);
	if (nsent < 0)
		die("sendmsg()");
	if ((size_t)nsent != iov.iov_len) {
		fprintf(stderr, "%s: sendmsg() sent %zd of %zu bytes\n", prog, nsent, iov.iov_len);
		return -1;
	}
	say("%s:sendmsg(): *** success, sent %zd bytes all-inclusive\n"
	    "(see kernel log for dtl)\n", prog, nsent);
	fflush(stdout);
	return 0;
}

static int recv_one(int sd)
{
	union { struct nlmsghdr h; char buf[NLMSG_SPACE(NLSPACE)]; } rx;
	struct iovec iov = { .iov_base = &rx, .iov_len = sizeof(rx) };
	struct sockaddr_nl from;
	struct msghdr msg = {
		.msg_name = &from, .msg_namelen = sizeof(from),
		.msg_iov = &iov, .msg_iovlen = 1,
	};
	ssize_t nrecv;
	int plen;

	say("%s: now blocking on kernel netlink msg via recvmsg() ...\n", prog);
	fflush(stdout);
	nrecv = recvmsg(sd, &msg, 0);
	if (nrecv < 0) {
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			fprintf(stderr, "%s: recvmsg() timed out: no reply from the kernel (is the module loaded?)\n", prog);
		else
			die("recvmsg()");
		return -1;
	}
	if (msg.msg_flags & MSG_TRUNC) {
		fprintf(stderr, "%s: recvmsg(): reply truncated\n", prog);
		return -1;
	}
	if (from.nl_pid != 0) {
		fprintf(stderr, "%s: recvmsg(): reply came from port %u, not the kernel\n", prog, from.nl_pid);
		return -1;
	}
	if (!NLMSG_OK(&rx.h, (size_t)nrecv)) {
		fprintf(stderr, "%s: recvmsg(): malformed reply of %zd bytes\n", prog, nrecv);
		return -1;
	}
	if (rx.h.nlmsg_type == NLMSG_ERROR) {
		struct nlmsgerr *e = NLMSG_DATA(&rx.h);

		/* The error code is only there when the message is long enough to hold it. */
		if (rx.h.nlmsg_len < NLMSG_LENGTH(sizeof(*e))) {
			fprintf(stderr, "%s: recvmsg(): an error reply of %u bytes, too short for its error code\n", prog, rx.h.nlmsg_len);
			return -1;
		}
		errno = -e->error;
		fprintf(stderr, "%s: kernel answered with an error: %s\n", prog, strerror(errno));
		return -1;
	}
	plen = (int)NLMSG_PAYLOAD(&rx.h, 0);
	say("%s:recvmsg(): *** success, received %zd bytes:"
	    "\nmsg from kernel netlink: \"%.*s\"\n",
	    prog, nrecv, (int)strnlen(NLMSG_DATA(&rx.h), plen), (char *)NLMSG_DATA(&rx.h));
	return 0;
}

int main(int argc, char **argv)
{
	const char *payload = "sample user data to send to kernel via netlink";
	long count = 1, proto = NETLINK_MY_UNIT_PROTO, timeout = 10;
	struct sockaddr_nl src_nl, dest_nl;
	struct nlmsghdr *nlhdr;
	int sd, opt, failed = 0;

	prog = argv[0];
	while ((opt = getopt(argc, argv, "m:n:p:t:qh")) != -1) {
		switch (opt) {
		case 'm': payload = optarg; break;
		case 'n': count = number("-n", optarg, 1, 1000000); break;
		case 'p': proto = number("-p", optarg, 0, 31); break;
		case 't': timeout = number("-t", optarg, 0, 3600); break;
		case 'q': quiet = 1; break;
		case 'h': usage(stdout); return 0;
		default: usage(stderr); return 2;
		}
	}
	if (optind != argc || strlen(payload) >= NLSPACE) {
		usage(stderr);
		return 2;
	}

	sd = socket(PF_NETLINK, SOCK_RAW, (int)proto);
	if (sd < 0) {
		if (errno == EPROTONOSUPPORT)
			fprintf(stderr, "%s: socket(): protocol %ld is not served: is the netlink_simple_intf module loaded?\n",
				prog, proto);
		else
			die("socket()");
		return EXIT_FAILURE;
	}
	say("%s:PID %d: netlink socket created\n", prog, getpid());

	if (timeout > 0) {
		struct timeval tv = { .tv_sec = timeout };

		if (setsockopt(sd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0)
			die("setsockopt(SO_RCVTIMEO)");
	}

	memset(&src_nl, 0, sizeof(src_nl));
	src_nl.nl_family = AF_NETLINK;
	src_nl.nl_pid = (__u32)getpid();
	if (bind(sd, (struct sockaddr *)&src_nl, sizeof(src_nl)) < 0)
		die("bind()");
	say("%s: bind done\n", prog);

	memset(&dest_nl, 0, sizeof(dest_nl));
	dest_nl.nl_family = AF_NETLINK;
	dest_nl.nl_pid = 0; /* the kernel */

	nlhdr = calloc(1, NLMSG_SPACE(NLSPACE));
	if (!nlhdr)
		die("calloc()");
	nlhdr->nlmsg_len = NLMSG_SPACE(NLSPACE);
	nlhdr->nlmsg_pid = (__u32)getpid();
	memcpy(NLMSG_DATA(nlhdr), payload, strlen(payload) + 1);
	say("%s: destination struct, netlink hdr, payload setup\n", prog);

	for (long i = 0; i < count && !failed; i++) {
		nlhdr->nlmsg_seq = (__u32)i;
		failed = send_one(sd, nlhdr, &dest_nl) || recv_one(sd);
	}
	free(nlhdr);
	if (close(sd) < 0)
		die("close()");
	return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
