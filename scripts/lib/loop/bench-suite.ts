// The bench's scale suite, written fresh into a directory: one module with a
// parameter and n tests, each a shell line that reads the parameter back
// and prints it, with a transcript of the module's load line and the output.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';

const MODULE = `// kmodvm bench: a module with one parameter.
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt
#include <linux/module.h>
static int level = 1;
module_param(level, int, 0444);
static int __init bench_init(void) { pr_info("loaded, level %d\\n", level); return 0; }
static void __exit bench_exit(void) { pr_info("unloaded\\n"); }
module_init(bench_init);
module_exit(bench_exit);
MODULE_LICENSE("GPL");
`;

export async function benchSuite(dir: string, n: number): Promise<string> {
  await mkdir(path.join(dir, 'mod'), { recursive: true });
  await mkdir(path.join(dir, 'expected'), { recursive: true });
  await writeFile(path.join(dir, 'mod', 'kmodvm_bench.c'), MODULE);
  await writeFile(
    path.join(dir, 'mod', 'Makefile'),
    'obj-m += kmodvm_bench.o\nKDIR ?= /lib/modules/$(shell uname -r)/build\nall:\n\t$(MAKE) -C $(KDIR) M=$(CURDIR) modules\n',
  );
  const tests: string[] = [];
  for (let i = 1; i <= n; i++) {
    tests.push(
      `  - name: level-${i}\n    run: cat /sys/module/kmodvm_bench/parameters/level\n    params: { kmodvm_bench: level=${i} }\n    transcript: expected/level.transcript-${i}`,
    );
    await writeFile(path.join(dir, 'expected', `level.transcript-${i}`), `[kernel]\nkmodvm_bench: loaded, level ${i}\nkmodvm_bench: unloaded\n[app]\n${i}\n`);
  }
  await writeFile(path.join(dir, 'kmodvm.yaml'), `modules:\n  - dir: mod\ntests:\n${tests.join('\n')}\n`);
  return dir;
}
