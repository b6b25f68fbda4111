/* SPDX-License-Identifier: GPL-2.0 OR MIT */
/*
 * PRINT_CTX(): one log line describing the context the caller runs in:
 *   CPU) [comm]:PID | <irqs-off><need-resched><hardirq/softirq><preempt-count> /\* func() *\/
 * comm is shown in [brackets] for a kernel thread (no mm). For example:
 *   005) netlink_userapp :3730 | ...0 /\* netlink_recv_and_reply() *\/
 */
#ifndef PRINT_CTX_H
#define PRINT_CTX_H

#include <linux/preempt.h>
#include <linux/sched.h>
#include <linux/smp.h>
#include <linux/irqflags.h>

#define PRINT_CTX() do {						\
	char __ctx_irq = '.';						\
	if (in_hardirq())						\
		__ctx_irq = in_softirq() ? 'H' : 'h';			\
	else if (in_serving_softirq())					\
		__ctx_irq = 's';					\
	pr_info("%03d)%c%s%c:%d | %c%c%c%u /* %s() */\n",		\
		raw_smp_processor_id(),					\
		current->mm ? ' ' : '[', current->comm,			\
		current->mm ? ' ' : ']', task_pid_nr(current),		\
		irqs_disabled() ? 'd' : '.',				\
		need_resched() ? 'N' : '.',				\
		__ctx_irq,						\
		preempt_count() & 0xff, __func__);			\
} while (0)

#endif /* PRINT_CTX_H */
