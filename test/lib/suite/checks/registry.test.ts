import t from 'tap';
import { CHECKS, checkIds, checksNamed, kernelArgsOf, makeChecks } from '../../../../scripts/lib/suite/checks/registry.ts';
import { suiteSchema } from '../../../../scripts/lib/suite/schema.ts';

t.test('every check is listed once, with an id of its own and a line of what it does', async (t) => {
  const ids = CHECKS.map((c) => c.id);
  t.same([...new Set(ids)], ids);
  for (const c of CHECKS) t.ok(c.about.length > 10, `${c.id} says what it does`);
  for (const c of CHECKS)
    t.equal(c.create({ choice: { memcheck: true, debugKernel: false }, setting: 1 as never }).id, c.id, `${c.id} makes a check of its id`);
});

t.test("kernelArgsOf: each argument once, slub_debug's flags combined in the checks' order", async (t) => {
  t.same(kernelArgsOf([{ kernelArgs: ['slub_debug=FZP', 'page_poison=1'] }, { kernelArgs: ['slub_debug=U'] }]), ['slub_debug=FZPU', 'page_poison=1']);
  t.same(kernelArgsOf([{ kernelArgs: ['slub_debug=U'] }, { kernelArgs: ['slub_debug=UF', 'a=1'] }, { kernelArgs: ['a=1'] }]), ['slub_debug=UF', 'a=1']);
  t.same(kernelArgsOf([{}, { kernelArgs: [] }]), []);
});

t.test('a run has the base checks, the memory checks with --memcheck, and a setting turns its check on', async (t) => {
  const none = { memcheck: false, debugKernel: false };
  t.same(checkIds({ choice: none, settings: {} }), ['exit-code', 'transcript', 'taint', 'no-splat']);
  t.same(checkIds({ choice: { memcheck: true, debugKernel: true }, settings: { log_rate: 5 } }), [
    'exit-code',
    'transcript',
    'taint',
    'no-splat',
    'memcheck-leak',
    'log_rate',
  ]);
  t.not(makeChecks({ choice: none, settings: {} })[0], makeChecks({ choice: none, settings: {} })[0], 'each run gets checks of its own');
  t.same(
    checksNamed(['no-splat', 'from-a-newer-kmodvm']).map((c) => c.id),
    ['no-splat'],
    'a saved run naming a check this kmodvm lacks is judged by the rest',
  );
});

t.test("the suite's checks: key takes each check's setting, and names the field it refuses", async (t) => {
  const base = { modules: [{ dir: 'm' }], tests: [{ name: 'a', run: 'true' }] };
  t.same(suiteSchema.parse({ ...base, checks: { log_rate: 100 } }).checks, { log_rate: 100 });
  t.same(suiteSchema.parse(base).checks, {});
  const bad = suiteSchema.safeParse({ ...base, checks: { log_rate: 0 } });
  t.equal(bad.success, false);
  t.same(bad.error?.issues[0].path, ['checks', 'log_rate']);
  t.same(suiteSchema.safeParse({ ...base, checks: { no_such_check: 1 } }).error?.issues[0].code, 'unrecognized_keys');
});
