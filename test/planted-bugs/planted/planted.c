// SPDX-License-Identifier: GPL-2.0
/*
 * planted: ten memory, locking and refcount bugs, one per load, chosen with
 * bug=NAME (issue 17). Test material for kmodvm's bug detection: each is the
 * smallest form of a bug that syzbot, 0-day or a KASAN/lockdep kernel finds,
 * planted at a line of its own so a report can be checked against it.
 *
 *   heap-overflow  a write past a kmalloc object
 *   use-after-free a write after kfree
 *   double-free    kfree twice
 *   leak           an allocation that is never freed (found at rmmod)
 *   sleep-atomic   msleep under a spinlock
 *   gfp-atomic     GFP_KERNEL under a spinlock
 *   abba           an AB-BA lock order that never actually deadlocks
 *   stack-oob      a stack out-of-bounds read
 *   refcount       a refcount underflow
 *   list-del       a double list_del
 */
#include <linux/delay.h>
#include <linux/list.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/refcount.h>
#include <linux/slab.h>
#include <linux/spinlock.h>
#include <linux/string.h>

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("kmodvm test material: one planted bug per load");

static char *bug = "none";
module_param(bug, charp, 0444);
MODULE_PARM_DESC(bug, "which bug to plant at load");

static DEFINE_SPINLOCK(lock_s);
static DEFINE_MUTEX(lock_a);
static DEFINE_MUTEX(lock_b);
static void *leaked;
/* Sizes the compiler cannot see through, so FORTIFY and the optimiser leave the bug as written. */
static volatile int len = 40, idx = 12;

static noinline void plant_heap_overflow(void)
{
	char *p = kmalloc(32, GFP_KERNEL);

	if (!p)
		return;
	memset(p, 0xaa, len); /* PLANTED heap-overflow */
	kfree(p);
}

static noinline void plant_use_after_free(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	if (!p)
		return;
	kfree(p);
	WRITE_ONCE(p[8], 0x5a); /* PLANTED use-after-free */
}

static noinline void plant_double_free(void)
{
	char *p = kmalloc(64, GFP_KERNEL);

	kfree(p);
	kfree(p); /* PLANTED double-free */
	barrier(); /* no tail call: the reports' frame is this function, not its caller */
}

static noinline void plant_leak(void)
{
	/* Kept in a global the exit function forgets to free: gone, with the module, at rmmod. */
	leaked = kmalloc(128, GFP_KERNEL); /* PLANTED leak */
	if (leaked)
		memset(leaked, 0, 128);
}

static noinline void plant_sleep_atomic(void)
{
	spin_lock(&lock_s);
	msleep(1); /* PLANTED sleep-atomic */
	spin_unlock(&lock_s);
}

static noinline void plant_gfp_atomic(void)
{
	void *p;

	spin_lock(&lock_s);
	p = kmalloc(64, GFP_KERNEL); /* PLANTED gfp-atomic */
	spin_unlock(&lock_s);
	kfree(p);
}

static noinline void plant_abba(void)
{
	mutex_lock(&lock_a);
	mutex_lock(&lock_b);
	mutex_unlock(&lock_b);
	mutex_unlock(&lock_a);
	mutex_lock(&lock_b);
	mutex_lock(&lock_a); /* PLANTED abba */
	mutex_unlock(&lock_a);
	mutex_unlock(&lock_b);
}

static noinline int plant_stack_oob(void)
{
	char buf[8] = "kmodvm!";

	return READ_ONCE(buf[idx]); /* PLANTED stack-oob */
}

static noinline void plant_refcount(void)
{
	refcount_t r = REFCOUNT_INIT(1);

	if (!refcount_dec_and_test(&r)) /* the last reference: 1 -> 0, as it should */
		return;
	refcount_dec(&r); /* PLANTED refcount */
}

static noinline void plant_list_del(void)
{
	LIST_HEAD(head);
	struct list_head item;

	list_add(&item, &head);
	list_del(&item);
	list_del(&item); /* PLANTED list-del */
}

static int __init planted_init(void)
{
	if (!strcmp(bug, "heap-overflow"))
		plant_heap_overflow();
	else if (!strcmp(bug, "use-after-free"))
		plant_use_after_free();
	else if (!strcmp(bug, "double-free"))
		plant_double_free();
	else if (!strcmp(bug, "leak"))
		plant_leak();
	else if (!strcmp(bug, "sleep-atomic"))
		plant_sleep_atomic();
	else if (!strcmp(bug, "gfp-atomic"))
		plant_gfp_atomic();
	else if (!strcmp(bug, "abba"))
		plant_abba();
	else if (!strcmp(bug, "stack-oob"))
		pr_info("planted: read %d\n", plant_stack_oob());
	else if (!strcmp(bug, "refcount"))
		plant_refcount();
	else if (!strcmp(bug, "list-del"))
		plant_list_del();
	else if (strcmp(bug, "none"))
		return -EINVAL;
	pr_info("planted: bug=%s planted\n", bug);
	return 0;
}

static void __exit planted_exit(void)
{
	pr_info("planted: unloaded\n");
}

module_init(planted_init);
module_exit(planted_exit);
