// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * netlink_simple_intf: a kernel netlink socket on a private protocol that
 * answers every message with "Reply from kernel netlink".
 *
 * Unlike the article this is based on, it trusts nothing user space sends:
 *  - every length is checked (nlmsg_ok/nlmsg_next) before anything is read;
 *  - several messages in one datagram are each answered;
 *  - the payload is printed bounded and escaped, truncated visibly;
 *  - the reply goes to the sender's real port (NETLINK_CB(skb).portid), never
 *    to the nlmsg_pid field that user space wrote (replying to port 0 sends
 *    the reply to this very socket and recurses until the stack overflows);
 *  - per-message logging and error reports are rate-limited.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ":%s(): " fmt, __func__

#include <linux/atomic.h>
#include <linux/init.h>
#include <linux/kernel.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/netlink.h>
#include <linux/ratelimit.h>
#include <linux/sched.h>
#include <linux/skbuff.h>
#include <linux/string.h>
#include <net/netlink.h>
#include <net/sock.h>

#include "print_ctx.h"

MODULE_AUTHOR("kmodvm authors");
MODULE_DESCRIPTION("Netlink demo: answers each message on a private protocol");
MODULE_LICENSE("Dual MIT/GPL");
MODULE_VERSION("0.2");

#define NLDEMO_DEFAULT_PROTO 31
/* The first protocol number the kernel leaves free: 0..16 are its own
 * families, 17 is reserved, and 18..22 are SCSITRANSPORT, ECRYPTFS, RDMA,
 * CRYPTO and SMC (include/uapi/linux/netlink.h). MAX_LINKS is 32. */
#define NLDEMO_FIRST_FREE_PROTO 23
/* Bytes of payload shown in the log before it is cut. */
#define NLDEMO_MAX_SHOWN 128

static int protocol = NLDEMO_DEFAULT_PROTO;
module_param(protocol, int, 0444);
MODULE_PARM_DESC(protocol, "netlink protocol number, 23..31 (default 31)");

static const char reply_text[] = "Reply from kernel netlink";

static struct sock *nlsock;
static atomic_t n_dropped = ATOMIC_INIT(0);
static atomic_t n_reply_failed = ATOMIC_INIT(0);

/* One ratelimit state per kind of message, so that a flood of one kind does
 * not hide the first report of another. The first message after load always
 * logs: a fresh state allows a burst of 10. */
static DEFINE_RATELIMIT_STATE(rl_msg, 5 * HZ, 10);
static DEFINE_RATELIMIT_STATE(rl_err, 5 * HZ, 10);

/* How many bytes of the payload to show, up to its first NUL and at most
 * NLDEMO_MAX_SHOWN; *cut says whether more non-NUL bytes follow. */
static int payload_shown(const char *data, int len, bool *cut)
{
	int shown = strnlen(data, min(len, NLDEMO_MAX_SHOWN));

	*cut = shown == NLDEMO_MAX_SHOWN && len > NLDEMO_MAX_SHOWN &&
	       data[NLDEMO_MAX_SHOWN] != '\0';
	return shown;
}

/* Sends the reply to @portid; returns 0 or a negative error, counted and
 * reported (rate-limited) here. */
static int send_reply(u32 portid, u32 seq)
{
	struct sk_buff *skb_tx;
	struct nlmsghdr *nlh;
	int stat;

	skb_tx = nlmsg_new(sizeof(reply_text), GFP_KERNEL);
	if (!skb_tx) {
		stat = -ENOMEM;
		goto failed;
	}
	nlh = nlmsg_put(skb_tx, 0, seq, NLMSG_DONE, sizeof(reply_text), 0);
	if (!nlh) {
		kfree_skb(skb_tx);
		stat = -EMSGSIZE;
		goto failed;
	}
	NETLINK_CB(skb_tx).dst_group = 0;
	memcpy(nlmsg_data(nlh), reply_text, sizeof(reply_text));

	/* nlmsg_unicast() consumes skb_tx whether or not it succeeds. */
	stat = nlmsg_unicast(nlsock, skb_tx, portid);
	if (stat >= 0)
		return 0;
failed:
	atomic_inc(&n_reply_failed);
	if (__ratelimit(&rl_err))
		pr_warn("reply to port %u failed (err=%d, %d failures so far)\n",
			portid, stat, atomic_read(&n_reply_failed));
	return stat;
}

static void drop(const char *why, u32 portid, unsigned int len)
{
	atomic_inc(&n_dropped);
	if (__ratelimit(&rl_err))
		pr_warn("dropped message from port %u: %s (%u bytes, %d dropped so far)\n",
			portid, why, len, atomic_read(&n_dropped));
}

static void netlink_recv_and_reply(struct sk_buff *skb)
{
	/* The sender's real port, set by the netlink core: user space cannot
	 * forge it, unlike nlmsghdr.nlmsg_pid. */
	u32 portid = NETLINK_CB(skb).portid;
	struct nlmsghdr *nlh;
	int remaining;

	if (portid == 0) {
		drop("sent by the kernel itself", portid, skb->len);
		return;
	}
	if (skb->len < NLMSG_HDRLEN) {
		drop("shorter than a netlink header", portid, skb->len);
		return;
	}

	nlh = nlmsg_hdr(skb);
	remaining = skb->len;
	if (!nlmsg_ok(nlh, remaining)) {
		drop("nlmsg_len does not fit the datagram", portid, skb->len);
		return;
	}
	for (; nlmsg_ok(nlh, remaining); nlh = nlmsg_next(nlh, &remaining)) {
		bool verbose;

		/* NOOP, ERROR, DONE, OVERRUN and the rest below NLMSG_MIN_TYPE are
		 * control messages, not requests: answering them would answer a
		 * reply. Type 0, and messages without NLM_F_REQUEST, are still
		 * answered: the article's own app sends exactly that. */
		if (nlh->nlmsg_type != 0 && nlh->nlmsg_type < NLMSG_MIN_TYPE) {
			drop("a control message (type below NLMSG_MIN_TYPE)", portid, nlh->nlmsg_len);
			continue;
		}
		verbose = __ratelimit(&rl_msg);

		if (verbose) {
			const char *data = nlmsg_data(nlh);
			bool cut;
			int shown = payload_shown(data, nlmsg_len(nlh), &cut);

			PRINT_CTX();
			pr_info("received from PID %u:\n\"%*pE\"%s\n", portid,
				shown, data, cut ? " ... (truncated)" : "");
		}
		if (send_reply(portid, nlh->nlmsg_seq) == 0 && verbose)
			pr_info("reply sent\n");
	}
	if (remaining >= NLMSG_HDRLEN)
		drop("trailing message with a bad nlmsg_len", portid, remaining);
}

static int __init netlink_simple_intf_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.input = netlink_recv_and_reply,
	};

	if (protocol < NLDEMO_FIRST_FREE_PROTO || protocol >= MAX_LINKS) {
		pr_err("protocol=%d is out of range (%d..%d)\n", protocol, NLDEMO_FIRST_FREE_PROTO, MAX_LINKS - 1);
		return -EINVAL;
	}

	pr_info("creating kernel netlink socket\n");
	nlsock = netlink_kernel_create(&init_net, protocol, &cfg);
	if (!nlsock) {
		/* The common cause is another kernel socket on this protocol. */
		pr_err("netlink_kernel_create(protocol=%d) failed: the protocol is already in use, or memory ran out\n",
		       protocol);
		return -EADDRINUSE;
	}
	pr_info("inserted\n");
	return 0;
}

static void __exit netlink_simple_intf_exit(void)
{
	netlink_kernel_release(nlsock);
	if (atomic_read(&n_dropped) || atomic_read(&n_reply_failed))
		pr_info("dropped %d malformed messages, %d replies failed\n",
			atomic_read(&n_dropped), atomic_read(&n_reply_failed));
	pr_info("removed\n");
}

module_init(netlink_simple_intf_init);
module_exit(netlink_simple_intf_exit);
