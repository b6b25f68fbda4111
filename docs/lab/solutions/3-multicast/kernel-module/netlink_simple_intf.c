// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Exercise 3 (reference solution): multicast. Every message the module
 * receives is broadcast as an event to netlink group 1; every socket that
 * joined the group receives it.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ":%s(): " fmt, __func__

#include <linux/init.h>
#include <linux/module.h>
#include <linux/netlink.h>
#include <linux/skbuff.h>
#include <net/netlink.h>
#include <net/sock.h>

MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("Netlink lab exercise 3: multicast events");

#define NETLINK_MY_UNIT_PROTO 31
#define EVENT_GROUP 1
#define EVENT_MAX 128

static struct sock *nlsock;

static void netlink_recv_and_reply(struct sk_buff *skb)
{
	struct nlmsghdr *nlh;
	int remaining = skb->len;

	for (nlh = nlmsg_hdr(skb); nlmsg_ok(nlh, remaining); nlh = nlmsg_next(nlh, &remaining)) {
		int len = strnlen(nlmsg_data(nlh), min(nlmsg_len(nlh), EVENT_MAX - 1));
		struct sk_buff *ev = nlmsg_new(len + 1, GFP_KERNEL);
		struct nlmsghdr *eh;
		int err;

		if (!ev)
			return;
		eh = nlmsg_put(ev, 0, 0, NLMSG_DONE, len + 1, 0);
		if (!eh) {
			kfree_skb(ev);
			return;
		}
		memcpy(nlmsg_data(eh), nlmsg_data(nlh), len);
		((char *)nlmsg_data(eh))[len] = '\0';
		/* nlmsg_multicast() consumes ev; -ESRCH only means nobody listens. */
		err = nlmsg_multicast(nlsock, ev, 0, EVENT_GROUP, GFP_KERNEL);
		pr_info("event \"%.*s\" sent to group %d (%s)\n", len, (char *)nlmsg_data(nlh), EVENT_GROUP,
			err == 0 ? "delivered" : err == -ESRCH ? "no listeners" : "failed");
	}
}

static int __init netlink_simple_intf_init(void)
{
	struct netlink_kernel_cfg cfg = {
		.input = netlink_recv_and_reply,
		.groups = EVENT_GROUP,
	};

	nlsock = netlink_kernel_create(&init_net, NETLINK_MY_UNIT_PROTO, &cfg);
	if (!nlsock)
		return -EADDRINUSE;
	pr_info("inserted, events go to group %d\n", EVENT_GROUP);
	return 0;
}

static void __exit netlink_simple_intf_exit(void)
{
	netlink_kernel_release(nlsock);
	pr_info("removed\n");
}

module_init(netlink_simple_intf_init);
module_exit(netlink_simple_intf_exit);
