// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Exercise 1: reproduce the original exchange.
 * Fill in the TODOs until `npm run lab:check -- 1` passes. The expected output
 * is in ../expected.transcript; the user app is the repository's userapp/.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ":%s(): " fmt, __func__

#include <linux/init.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "print_ctx.h"

/* TODO: a module without a licence does not even build: declare it with MODULE_LICENSE. */

#define NETLINK_MY_UNIT_PROTO 31

static const char reply_text[] __maybe_unused = "Reply from kernel netlink";
static struct sock *nlsock __maybe_unused;

static void netlink_recv_and_reply(struct sk_buff *skb)
{
	/* The sender's real port: set by the kernel, user space cannot forge it. */
	u32 portid = NETLINK_CB(skb).portid;
	struct nlmsghdr *nlh;
	int remaining = skb->len;

	for (nlh = nlmsg_hdr(skb); nlmsg_ok(nlh, remaining); nlh = nlmsg_next(nlh, &remaining)) {
		PRINT_CTX();
		pr_info("received from PID %u:\n\"%.*s\"\n", portid,
			(int)strnlen(nlmsg_data(nlh), nlmsg_len(nlh)), (char *)nlmsg_data(nlh));
		/*
		 * TODO: reply with reply_text (with its NUL) and type NLMSG_DONE:
		 *   nlmsg_new(), nlmsg_put(), memcpy into nlmsg_data(), nlmsg_unicast()
		 * to portid, then pr_info("reply sent\n").
		 */
	}
}

static int __init netlink_simple_intf_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.input = netlink_recv_and_reply,
	};

	pr_info("creating kernel netlink socket\n");
	/* TODO: nlsock = netlink_kernel_create(...) on NETLINK_MY_UNIT_PROTO; on NULL return -EADDRINUSE. */
	(void)cfg;
	pr_info("inserted\n");
	return 0;
}

static void __exit netlink_simple_intf_exit(void)
{
	/* TODO: release the socket with netlink_kernel_release(). */
	pr_info("removed\n");
}

module_init(netlink_simple_intf_init);
module_exit(netlink_simple_intf_exit);
