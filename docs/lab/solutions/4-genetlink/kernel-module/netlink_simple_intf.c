// SPDX-License-Identifier: GPL-2.0 OR MIT
/*
 * Exercise 4 (reference solution): the echo of exercise 2 as a generic
 * netlink family, the modern API: family KMODVM_ECHO, command ECHO, attribute
 * MSG (a NUL-terminated string). The reply carries MSG in upper case.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ":%s(): " fmt, __func__

#include <linux/ctype.h>
#include <linux/init.h>
#include <linux/module.h>
#include <linux/version.h>
#include <net/genetlink.h>

MODULE_LICENSE("Dual MIT/GPL");
MODULE_DESCRIPTION("Netlink lab exercise 4: generic netlink echo");

enum { ECHO_A_UNSPEC, ECHO_A_MSG, __ECHO_A_MAX };
#define ECHO_A_MAX (__ECHO_A_MAX - 1)
enum { ECHO_C_UNSPEC, ECHO_C_ECHO, __ECHO_C_MAX };
#define ECHO_MSG_MAX 255

static const struct nla_policy echo_policy[ECHO_A_MAX + 1] = {
	[ECHO_A_MSG] = { .type = NLA_NUL_STRING, .len = ECHO_MSG_MAX },
};

static struct genl_family echo_family;

static int echo_doit(struct sk_buff *skb, struct genl_info *info)
{
	char up[ECHO_MSG_MAX + 1];
	struct sk_buff *reply;
	const char *msg;
	void *hdr;
	int i;

	if (!info->attrs[ECHO_A_MSG])
		return -EINVAL;
	msg = nla_data(info->attrs[ECHO_A_MSG]);
	pr_info("echo from port %u: \"%s\"\n", info->snd_portid, msg);
	for (i = 0; msg[i] && i < ECHO_MSG_MAX; i++)
		up[i] = toupper(msg[i]);
	up[i] = '\0';

	reply = genlmsg_new(nla_total_size(i + 1), GFP_KERNEL);
	if (!reply)
		return -ENOMEM;
	hdr = genlmsg_put_reply(reply, info, &echo_family, 0, ECHO_C_ECHO);
	if (!hdr || nla_put_string(reply, ECHO_A_MSG, up)) {
		nlmsg_free(reply);
		return -EMSGSIZE;
	}
	genlmsg_end(reply, hdr);
	return genlmsg_reply(reply, info);
}

static const struct genl_small_ops echo_ops[] = {
	{ .cmd = ECHO_C_ECHO, .doit = echo_doit },
};

static struct genl_family echo_family = {
	.name = "KMODVM_ECHO",
	.version = 1,
	.maxattr = ECHO_A_MAX,
	.policy = echo_policy,
	.small_ops = echo_ops,
	.n_small_ops = ARRAY_SIZE(echo_ops),
#if LINUX_VERSION_CODE >= KERNEL_VERSION(6, 1, 0)
	/* Strict attribute validation for every command (new in 6.1). */
	.resv_start_op = __ECHO_C_MAX,
#endif
	.module = THIS_MODULE,
};

static int __init netlink_simple_intf_init(void)
{
	int err = genl_register_family(&echo_family);

	if (err) {
		pr_err("genl_register_family() failed: %d\n", err);
		return err;
	}
	pr_info("registered generic netlink family %s\n", echo_family.name);
	return 0;
}

static void __exit netlink_simple_intf_exit(void)
{
	genl_unregister_family(&echo_family);
	pr_info("removed\n");
}

module_init(netlink_simple_intf_init);
module_exit(netlink_simple_intf_exit);
