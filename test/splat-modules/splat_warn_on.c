// SPDX-License-Identifier: GPL-2.0
/* Hits a WARN_ON at load time and loads anyway. */
#include <linux/module.h>
#include <linux/init.h>

static int volatile broken_invariant = 1;

static int __init splat_init(void)
{
	WARN_ON(broken_invariant);
	return 0;
}
static void __exit splat_exit(void) { }
module_init(splat_init);
module_exit(splat_exit);
MODULE_LICENSE("GPL");
