import { readFileSync } from 'node:fs';
import t from 'tap';
import { heldRmmodStep, judgeHeld, parseHeldRmmod } from '../../../../scripts/lib/suite/checks/held-rmmod.ts';

// Recorded in a real guest: rmmod edu while `exec 3</dev/edu0; exec sleep 600` held it (examples/edu, the held-rmmod test).
const inUse = readFileSync(new URL('../../../fixtures/lifecycle/held-rmmod-edu-in-use.stdout', import.meta.url), 'utf8');
const timeouts = { boot: 180, build: 600, load: 60, app: 60, command: 60 };

t.test('what the guest step said: the node held, what rmmod said, how the holder ended', async (t) => {
  t.same(parseHeldRmmod(inUse), { held: '/dev/edu0', rmmod: { code: 1, said: 'rmmod: ERROR: Module edu is in use' }, holderExit: 143 });
});

t.test('refused as in use passes, and the module stays loaded for the test’s own rmmod', async (t) => {
  const j = judgeHeld('edu', parseHeldRmmod(inUse), 10);
  t.equal(j.ok, true);
  t.equal(j.unloaded, false);
  t.match(j.message, /refused while \/dev\/edu0 was held open/);
});

t.test('done while held passes too, and says the module is to be loaded again', async (t) => {
  const j = judgeHeld('drv', parseHeldRmmod('held /dev/drv0\nrmmod 0 \nholder-exit 143\n'), 10);
  t.equal(j.ok, true);
  t.equal(j.unloaded, true);
});

t.test('rmmod failing for another reason fails the check as a load failure; a holder that held nothing is the test’s failure', async (t) => {
  const busy = judgeHeld(
    'drv',
    parseHeldRmmod('held /dev/drv0\nrmmod 1 rmmod: ERROR: could not remove module drv: Device or resource busy\nholder-exit 0\n'),
    10,
  );
  t.equal(busy.ok, false);
  t.equal(busy.failure, 'load');
  t.match(busy.message, /Device or resource busy/);
  const none = judgeHeld('drv', parseHeldRmmod(''), 10);
  t.equal(none.ok, false);
  t.equal(none.failure, 'app');
});

t.test("the holder is the test's own command: untrusted, from the suite root, passed to sh -c as it is", async (t) => {
  const s = heldRmmodStep({ name: 'edu' }, 'exec 3</dev/edu0; exec sleep 600', timeouts);
  t.equal(s.untrusted, true);
  t.equal(s.cwd, '/root/kmodvm');
  t.same(s.argv.slice(-3), ['edu', 'exec 3</dev/edu0; exec sleep 600', '20']);
});
