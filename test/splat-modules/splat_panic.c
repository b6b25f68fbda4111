// SPDX-License-Identifier: GPL-2.0
/* Panics at load time. */
#include <linux/module.h>
#include <linux/init.h>
#include <linux/panic.h>

static int __init splat_init(void)
{
	panic("splat_panic: deliberate panic for the splat detector's fixtures");
	return 0;
}
module_init(splat_init);
MODULE_LICENSE("GPL");
