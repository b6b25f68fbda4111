// SPDX-License-Identifier: MIT
/*
 * Exercise 3 (given, complete): two listener processes join netlink
 * group 1; the parent sends one message; the kernel broadcasts it; each
 * listener reports what it got. Output is printed by the parent, in
 * listener order, so it is the same on every run.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/netlink.h>

#define PROTO 31
#define GROUP 1
#define LISTENERS 2

static void die(const char *what)
{
	fprintf(stderr, "%s failed: %s\n", what, strerror(errno));
	exit(EXIT_FAILURE);
}

static int nl_socket(unsigned int groups)
{
	struct sockaddr_nl a = { .nl_family = AF_NETLINK, .nl_groups = groups };
	struct timeval tv = { .tv_sec = 5 };
	int sd = socket(AF_NETLINK, SOCK_RAW, PROTO);

	if (sd < 0) die("socket()");
	if (setsockopt(sd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) < 0) die("SO_RCVTIMEO");
	if (bind(sd, (struct sockaddr *)&a, sizeof(a)) < 0) die("bind()");
	return sd;
}

/* A listener: joins the group, says "ready" on the pipe, writes what it got to the pipe. */
static void listener(int out)
{
	char buf[512];
	int sd = nl_socket(1u << (GROUP - 1));
	struct nlmsghdr *h = (struct nlmsghdr *)buf;
	ssize_t n;

	if (write(out, "R", 1) != 1) die("write()");
	n = recv(sd, buf, sizeof(buf), 0);
	if (n < 0 || !NLMSG_OK(h, (size_t)n)) {
		dprintf(out, "no event (%s)", n < 0 ? strerror(errno) : "malformed");
		exit(EXIT_FAILURE);
	}
	dprintf(out, "got event \"%.*s\"", (int)strnlen(NLMSG_DATA(h), NLMSG_PAYLOAD(h, 0)), (char *)NLMSG_DATA(h));
	exit(EXIT_SUCCESS);
}

int main(void)
{
	const char *payload = "sample event for every listener";
	int pipes[LISTENERS][2], failed = 0;
	struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
	char msg[NLMSG_SPACE(64)] = { 0 };
	struct nlmsghdr *h = (struct nlmsghdr *)msg;
	int sd;

	for (int i = 0; i < LISTENERS; i++) {
		char c;

		if (pipe(pipes[i]) < 0) die("pipe()");
		if (fork() == 0) {
			close(pipes[i][0]);
			listener(pipes[i][1]);
		}
		close(pipes[i][1]);
		if (read(pipes[i][0], &c, 1) != 1) die("listener start");
	}
	printf("%d listeners joined group %d\n", LISTENERS, GROUP);
	sd = nl_socket(0);
	h->nlmsg_len = NLMSG_LENGTH(strlen(payload) + 1);
	memcpy(NLMSG_DATA(h), payload, strlen(payload) + 1);
	if (sendto(sd, msg, h->nlmsg_len, 0, (struct sockaddr *)&kernel, sizeof(kernel)) < 0) die("sendto()");
	printf("sent \"%s\" to the kernel\n", payload);
	for (int i = 0; i < LISTENERS; i++) {
		char got[256];
		ssize_t n = read(pipes[i][0], got, sizeof(got) - 1);

		got[n > 0 ? n : 0] = '\0';
		printf("listener %d: %s\n", i + 1, got);
	}
	for (int i = 0, st; i < LISTENERS; i++) {
		wait(&st);
		if (!WIFEXITED(st) || WEXITSTATUS(st)) failed = 1;
	}
	close(sd);
	return failed;
}
