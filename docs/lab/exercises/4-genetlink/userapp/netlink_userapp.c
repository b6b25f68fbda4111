// SPDX-License-Identifier: MIT
/*
 * Exercise 4 (given, complete): the generic netlink client. It asks the
 * controller (GENL_ID_CTRL) for the id of family KMODVM_ECHO, sends the ECHO
 * command with a MSG attribute, and prints the MSG of the reply.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <unistd.h>
#include <linux/genetlink.h>
#include <linux/netlink.h>

#define ECHO_C_ECHO 1
#define ECHO_A_MSG 1

struct req { struct nlmsghdr n; struct genlmsghdr g; char buf[512]; };

static void die(const char *what)
{
	fprintf(stderr, "%s failed: %s\n", what, strerror(errno));
	exit(EXIT_FAILURE);
}

static void put_attr(struct req *r, unsigned short type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)r + NLMSG_ALIGN(r->n.nlmsg_len));

	a->nla_type = type;
	a->nla_len = NLA_HDRLEN + len;
	memcpy((char *)a + NLA_HDRLEN, data, len);
	r->n.nlmsg_len = NLMSG_ALIGN(r->n.nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* Sends r, receives one answer into r; returns its length. An NLMSG_ERROR answer is fatal. */
static ssize_t exchange(int sd, struct req *r)
{
	struct sockaddr_nl k = { .nl_family = AF_NETLINK };
	ssize_t n;

	if (sendto(sd, r, r->n.nlmsg_len, 0, (struct sockaddr *)&k, sizeof(k)) < 0) die("sendto()");
	n = recv(sd, r, sizeof(*r), 0);
	if (n < 0) die("recv()");
	if (!NLMSG_OK(&r->n, (size_t)n)) { fprintf(stderr, "malformed answer\n"); exit(EXIT_FAILURE); }
	if (r->n.nlmsg_type == NLMSG_ERROR) {
		errno = -((struct nlmsgerr *)NLMSG_DATA(&r->n))->error;
		die("the kernel's answer");
	}
	return n;
}

/* The attribute of type t in a generic netlink message, or NULL. */
static struct nlattr *find_attr(struct req *r, unsigned short t)
{
	int left = r->n.nlmsg_len - NLMSG_LENGTH(GENL_HDRLEN);
	struct nlattr *a = (struct nlattr *)((char *)NLMSG_DATA(&r->n) + GENL_HDRLEN);

	while (left >= (int)NLA_HDRLEN && a->nla_len >= NLA_HDRLEN && a->nla_len <= left) {
		if ((a->nla_type & NLA_TYPE_MASK) == t) return a;
		left -= NLA_ALIGN(a->nla_len);
		a = (struct nlattr *)((char *)a + NLA_ALIGN(a->nla_len));
	}
	return NULL;
}

int main(void)
{
	const char *family = "KMODVM_ECHO", *payload = "sample user data to send to kernel via netlink";
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };
	struct timeval tv = { .tv_sec = 5 };
	struct req r;
	struct nlattr *a;
	unsigned short id;
	int sd = socket(AF_NETLINK, SOCK_RAW, NETLINK_GENERIC);

	if (sd < 0) die("socket(NETLINK_GENERIC)");
	if (setsockopt(sd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) die("SO_RCVTIMEO");
	if (bind(sd, (struct sockaddr *)&me, sizeof(me)) < 0) die("bind()");

	memset(&r, 0, sizeof(r));
	r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.n.nlmsg_type = GENL_ID_CTRL;
	r.n.nlmsg_flags = NLM_F_REQUEST;
	r.g.cmd = CTRL_CMD_GETFAMILY;
	r.g.version = 1;
	put_attr(&r, CTRL_ATTR_FAMILY_NAME, family, strlen(family) + 1);
	exchange(sd, &r);
	a = find_attr(&r, CTRL_ATTR_FAMILY_ID);
	if (!a) { fprintf(stderr, "family %s: no id in the answer\n", family); return EXIT_FAILURE; }
	memcpy(&id, (char *)a + NLA_HDRLEN, sizeof(id));
	printf("family %s has id %u\n", family, id);

	memset(&r, 0, sizeof(r));
	r.n.nlmsg_len = NLMSG_LENGTH(GENL_HDRLEN);
	r.n.nlmsg_type = id;
	r.n.nlmsg_flags = NLM_F_REQUEST;
	r.g.cmd = ECHO_C_ECHO;
	r.g.version = 1;
	put_attr(&r, ECHO_A_MSG, payload, strlen(payload) + 1);
	printf("sent ECHO \"%s\"\n", payload);
	exchange(sd, &r);
	a = find_attr(&r, ECHO_A_MSG);
	if (!a) { fprintf(stderr, "the reply has no MSG attribute\n"); return EXIT_FAILURE; }
	printf("reply: \"%.*s\"\n", (int)strnlen((char *)a + NLA_HDRLEN, a->nla_len - NLA_HDRLEN), (char *)a + NLA_HDRLEN);
	close(sd);
	return EXIT_SUCCESS;
}
