// Two processes at once on one key (an image build, a snapshot save, an
// instance's boot and a suite's build tree all take this lock): they take
// turns, never overlap.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';

const root = path.join(import.meta.dirname, '../../..');

t.test('two processes holding one lock take turns: their critical sections never overlap', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-lock-'));
  const journal = path.join(dir, 'journal');
  const code = (who: string) => `import { withLock } from ${JSON.stringify(path.join(root, 'scripts/lib/core/lock.ts'))};
import { appendFileSync } from 'node:fs';
await withLock(${JSON.stringify(path.join(dir, '.key'))}, { waitS: 60, failure: 'image', what: 'k', onWait: () => appendFileSync(${JSON.stringify(journal)}, '${who} waits\\n') }, async () => {
  appendFileSync(${JSON.stringify(journal)}, '${who} in\\n');
  await new Promise((r) => setTimeout(r, 700));
  appendFileSync(${JSON.stringify(journal)}, '${who} out\\n');
});`;
  const run = (who: string) =>
    new Promise<number | null>((resolve) =>
      spawn(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', code(who)], { cwd: root, stdio: 'inherit' }).on('close', resolve),
    );
  const codes = await Promise.all([run('a'), run('b')]);
  t.same(codes, [0, 0]);
  const lines = readFileSync(journal, 'utf8')
    .trim()
    .split('\n')
    .filter((l) => !l.endsWith('waits'));
  t.equal(lines.length, 4);
  const first = lines[0].split(' ')[0];
  const second = first === 'a' ? 'b' : 'a';
  t.same(lines, [`${first} in`, `${first} out`, `${second} in`, `${second} out`], 'one after the other');
  t.match(readFileSync(journal, 'utf8'), new RegExp(`${second} waits`), 'the second said it waits');
});
