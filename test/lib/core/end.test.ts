import t from 'tap';
import { posixJoin } from '../../../scripts/lib/core/end.ts';

t.test('posixJoin quotes a first word with = in it: A=1 would be a variable assignment, not the command (#24)', async (t) => {
  t.equal(posixJoin(['A=1', 'make', 'KDIR=/k']), "'A=1' make KDIR=/k");
  t.equal(posixJoin(['sh', '-c', "echo 'x'"]), `sh -c 'echo '\\''x'\\'''`);
});
