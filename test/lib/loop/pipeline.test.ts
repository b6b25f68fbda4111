import t from 'tap';
import { defaultConfig, validateConfig } from '../../../scripts/lib/core/config.ts';
import { withSuite } from '../../../scripts/lib/loop/pipeline.ts';

const root = new URL('../../../', import.meta.url).pathname.replace(/\/$/, '');

t.test("a suite's kernel_args come once, however often the suite is applied (#23: --reuse applied it twice)", async (t) => {
  const c = validateConfig({}, defaultConfig({}, root));
  const suite = { kernelArgs: ['kmodvm.e2e=once', 'loglevel=7'], memcheck: true };
  const once = withSuite(c, suite);
  t.same(withSuite(once, suite).kernelArgs, once.kernelArgs);
  t.equal(once.kernelArgs.filter((a) => a === 'kmodvm.e2e=once').length, 1);
  t.ok(
    once.kernelArgs.some((a) => a.startsWith('slub_debug=')),
    "memcheck's arguments are there, once",
  );
  t.equal(withSuite(once, suite).kernelArgs.filter((a) => a.startsWith('slub_debug=')).length, 1);
});
