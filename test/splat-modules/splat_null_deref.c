// SPDX-License-Identifier: GPL-2.0
/* Dereferences NULL at load time: an oops, on purpose. */
#include <linux/module.h>
#include <linux/init.h>

struct thing { int value; };
static struct thing *volatile nothing;

static int __init splat_init(void)
{
	pr_info("splat_null_deref: about to read through NULL\n");
	return nothing->value;
}
module_init(splat_init);
MODULE_LICENSE("GPL");
