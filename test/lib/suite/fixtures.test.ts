import t from 'tap';
import { parseData } from '../../../scripts/lib/core/datafile.ts';
import { KmodvmError } from '../../../scripts/lib/core/errors.ts';
import { fixtureRemoveSteps, fixtureSteps, loadFixtureTable, resolveFixtures } from '../../../scripts/lib/suite/fixtures.ts';
import { suiteSchema } from '../../../scripts/lib/suite/schema.ts';

const table = loadFixtureTable();
const timeouts = { boot: 180, build: 600, load: 60, app: 60, command: 60 };

/** A suite's fixtures as loadSuite reads them: parsed with its line numbers, then resolved. */
function fixturesOf(yaml: string) {
  const file = '/s/kmodvm.yaml';
  const { value, where } = parseData(yaml, file, suiteSchema, 'hint');
  return resolveFixtures(value.fixtures, table, file, where);
}
const head = 'modules: [{dir: m}]\ntests: [{name: a, run: "true"}]\n';

t.test('the table names every test double the issue asks for, each a module', async (t) => {
  for (const n of ['i2c-stub', 'scsi_debug', 'null_blk', 'mac80211_hwsim', 'dummy_hcd', 'gadget-acm', 'vivid', 'vcan', 'uinput']) t.ok(table[n], n);
});

t.test('a fixture with its parameters: modprobe with them (quoted for the kernel), then the modules it also needs', async (t) => {
  const [stub, vcan] = fixturesOf(`${head}fixtures:\n  - i2c-stub chip_addr=0x50\n  - {name: vcan}\n`);
  t.same(
    fixtureSteps(stub, timeouts).map((s) => s.argv),
    [
      ['modprobe', 'i2c_stub', 'chip_addr=0x50'],
      ['modprobe', '-a', 'i2c_dev'],
    ],
  );
  t.same(
    fixtureSteps(vcan, timeouts).map((s) => s.argv.join(' ')),
    ['modprobe vcan', 'ip link add dev vcan0 type vcan', 'ip link set vcan0 up'],
  );
  t.same(
    fixtureRemoveSteps(vcan, timeouts).map((s) => s.argv.join(' ')),
    ['ip link del vcan0', 'modprobe -r vcan'],
  );
  t.same(fixtureRemoveSteps(stub, timeouts).at(-1)?.argv, ['modprobe', '-r', 'i2c_dev', 'i2c_stub'], 'what it also loaded comes out first');
  for (const s of fixtureSteps(stub, timeouts)) t.equal(s.failure, 'load');
});

t.test('params in the object form, a list for a value with a space', async (t) => {
  const [sd] = fixturesOf(`${head}fixtures:\n  - name: scsi_debug\n    params: ["dev_size_mb=16", "inq_product=Disk One"]\n`);
  t.same(fixtureSteps(sd, timeouts)[0].argv, ['modprobe', 'scsi_debug', 'dev_size_mb=16', 'inq_product="Disk One"']);
});

t.test('a name with _ for - (or the other way) is the same fixture', async (t) => {
  t.equal(
    fixturesOf(`${head}fixtures: [i2c_stub chip_addr=0x50, null-blk]\n`)
      .map((f) => f.name)
      .join(' '),
    'i2c-stub null_blk',
  );
});

t.test('bad input: exit 2, naming the file, the line and the entry', async (t) => {
  const cases: [string, RegExp][] = [
    ['  - v4l2loopback\n', /kmodvm\.yaml:5: fixtures\[1\]: unknown fixture "v4l2loopback"; kmodvm knows i2c-stub, /],
    ['  - i2c-stub\n', /:5: fixtures\[1\]: i2c-stub needs chip_addr=/],
    ['  - null_blk\n', /:5: fixtures\[1\]: null_blk is named twice/],
    ['  - "scsi_debug ;reboot"\n', /:5: fixtures\[1\]: ";reboot" is not a module parameter/],
  ];
  for (const [line, re] of cases) {
    const e = (() => {
      try {
        fixturesOf(`${head}fixtures:\n  - null_blk\n${line}`);
      } catch (x) {
        return x as KmodvmError;
      }
    })();
    t.ok(e instanceof KmodvmError, line);
    t.equal(e?.failure, 'usage');
    t.match(e?.message, re);
  }
});
