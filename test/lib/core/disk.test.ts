import { mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { readFrom } from '../../../scripts/lib/core/disk.ts';

t.test('readFrom reads the last bytes of what a log gained, past its cap with a note (#24: the serial log was read whole)', async (t) => {
  const log = path.join(mkdtempSync(path.join(os.tmpdir(), 'kmodvm-disk-')), 'serial.log');
  writeFileSync(log, `${'x'.repeat(1000)}TAIL`);
  t.match(await readFrom(log, 10, 100), /^\[kmodvm: 894 bytes of .*serial\.log left out; the last 100 follow\]\nx{96}TAIL$/);
  t.equal(await readFrom(log, 990, 100), 'xxxxxxxxxxTAIL', 'under the cap: all of it, no note');
  t.equal(await readFrom(log, 2000, 100), '', 'nothing new');
});
