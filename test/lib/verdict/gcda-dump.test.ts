import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseGcdaDump } from '../../../scripts/lib/verdict/gcda-dump.ts';

// What the guest's coverage step printed after the netlink test (debug kernel, the module built with GCOV_PROFILE=y).
const out = readFileSync(new URL('../../fixtures/coverage/netlink.gcda-step.stdout', import.meta.url), 'utf8');
const TREE = '/root/.cache/kmodvm/host-builds/76b47cb07178d00b/tree';

t.test("a real step's output: the module's .gcda, relative to the tree, as gcc wrote it", async (t) => {
  const { files, refused } = parseGcdaDump(out, TREE);
  t.same(refused, []);
  t.same(
    files.map((f) => f.rel),
    ['kernel-module/netlink_simple_intf.gcda'],
  );
  t.equal(files[0].data.subarray(0, 4).toString('latin1'), 'adcg', "gcov's data magic, as a little-endian file has it");
  t.equal(files[0].data.length, 1048);
});

t.test('what the guest may not name: a path outside the tree, with .., not a .gcda, or bytes that are not base64', async (t) => {
  const bad = [
    '== /etc/passwd.gcda',
    'AAAA',
    `== ${TREE}/../../x.gcda`,
    'AAAA',
    `== ${TREE}/a/b.gcno`,
    'AAAA',
    `== ${TREE}/a.gcda`,
    'not base64!',
    `== ${TREE}/ok.gcda`,
    'AAAA',
  ].join('\n');
  const { files, refused } = parseGcdaDump(bad, TREE);
  t.same(
    files.map((f) => f.rel),
    ['ok.gcda'],
  );
  t.equal(refused.length, 4);
});
