import t from 'tap';
import { parseShard, selectTests } from '../../../scripts/lib/suite/select.ts';

const caught = (f: () => unknown): unknown => {
  try {
    f();
    return undefined;
  } catch (e) {
    return e;
  }
};
const tests = Array.from({ length: 7 }, (_, i) => ({ name: `t${i + 1}` }));

t.test('the shards of a suite run each test exactly once, round-robin', async (t) => {
  const shards = [1, 2, 3].map((i) => selectTests(tests, { shard: { index: i, total: 3 } }).map((x) => x.name));
  t.same(shards, [
    ['t1', 't4', 't7'],
    ['t2', 't5'],
    ['t3', 't6'],
  ]);
  t.same(shards.flat().sort(), tests.map((x) => x.name).sort());
  t.same(
    selectTests(tests, { shard: { index: 5, total: 9 } }).map((x) => x.name),
    ['t5'],
  );
  t.same(selectTests(tests, { shard: { index: 9, total: 9 } }), [], 'more shards than tests: some run nothing');
});

t.test('--only takes names and globs; one that matches nothing is a usage error naming the tests', async (t) => {
  t.same(
    selectTests(tests, { only: ['t2'] }).map((x) => x.name),
    ['t2'],
  );
  t.same(
    selectTests(tests, { only: ['t[1-3]', 't7'] }).map((x) => x.name),
    ['t1', 't2', 't3', 't7'],
  );
  t.same(
    selectTests(tests, { only: ['t*'], shard: { index: 2, total: 2 } }).map((x) => x.name),
    ['t2', 't4', 't6'],
    '--only first, then the shard',
  );
  t.match(
    caught(() => selectTests(tests, { only: ['nope'] })),
    { failure: 'usage', hint: /t1, t2, t3/ },
  );
});

t.test('--shard I/N', async (t) => {
  t.same(parseShard('2/4'), { index: 2, total: 4 });
  for (const bad of ['0/2', '3/2', '1/0', 'a/b', '2'])
    t.match(
      caught(() => parseShard(bad)),
      { failure: 'usage' },
      bad,
    );
});
