import t from 'tap';
import { describeEnd, posixJoin } from '../../../scripts/lib/core/end.ts';

t.test('posixJoin quotes a first word with = in it: A=1 would be a variable assignment, not the command (#24)', async (t) => {
  t.equal(posixJoin(['A=1', 'make', 'KDIR=/k']), "'A=1' make KDIR=/k");
  t.equal(posixJoin(['sh', '-c', "echo 'x'"]), `sh -c 'echo '\\''x'\\'''`);
});

t.test('describeEnd: each way a child ends in one phrase; no exit status at all is a lost connection, not "exited undefined"', async (t) => {
  t.equal(describeEnd({ exitCode: 0, timedOut: false }), 'exited 0');
  t.equal(describeEnd({ exitCode: 2, timedOut: false }), 'exited 2');
  t.equal(describeEnd({ timedOut: true, timeoutMs: 30_000 }), 'timed out after 30 s');
  t.equal(describeEnd({ signal: 'SIGKILL', timedOut: false }), 'killed by SIGKILL');
  t.equal(describeEnd({ failedToStart: 'ENOENT', timedOut: false }), 'could not start: ENOENT');
  t.equal(describeEnd({ timedOut: false }), 'ended without an exit status: the connection to it was lost (did the guest die?)');
});
