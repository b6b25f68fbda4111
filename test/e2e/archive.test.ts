// A lab room (issue 18.1): the real image exported, imported on a "seat"
// (a cache of its own) with --trust, then booted there. The seat has SSH
// keys of its own for the default guest; the systemd profile still logs in
// with the archive's keys, kept in shared-keys/.
import { mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';
import { loadConfig } from '../../scripts/lib/core/flags.ts';
import { preflight } from '../../scripts/lib/host/preflight.ts';
import { ensureImage } from '../../scripts/lib/image/build.ts';

const root = new URL('../../', import.meta.url).pathname;
const log = (l: string): void => {
  t.comment(l);
};
await preflight(log);
const img = await ensureImage(loadConfig([]).config, log);
const kmodvm = (args: string[]) => execa(process.execPath, [path.join(root, 'bin/kmodvm.js'), ...args], { reject: false, cwd: root, timeout: 20 * 60_000 });
const work = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-room-'));
const seat = path.join(work, 'seat-cache');
const runs = path.join(work, 'runs');

t.test('export, then import on a seat only with the fingerprint export printed', async (t) => {
  const file = path.join(work, 'room.tar.zst');
  const ex = await kmodvm(['image', 'export', file]);
  t.equal(ex.exitCode, 0, ex.stderr);
  const fp = /--trust ([0-9a-f]{32})/.exec(ex.stderr)?.[1];
  t.ok(fp, 'export printed the fingerprint');
  const refused = await kmodvm(['image', 'import', file, '--cache-dir', seat]);
  t.equal(refused.exitCode, 2, 'without --trust: bad input, nothing imported');
  t.match(refused.stderr, new RegExp(`fingerprint is ${fp}`));
  const im = await kmodvm(['image', 'import', file, '--cache-dir', seat, '--trust', fp!]);
  t.equal(im.exitCode, 0, im.stderr);
  t.match(im.stderr, /this seat has its own SSH keys/);
  t.not(readFileSync(path.join(seat, 'images', img.key, 'id_ed25519'), 'utf8'), readFileSync(img.clientKey, 'utf8'), "the seat's client key is its own");
});

t.test('the seat runs the demo on the default guest, with its own keys', async (t) => {
  const r = await kmodvm(['test', '--cache-dir', seat, '--runs-dir', runs]);
  t.equal(r.exitCode, 0, r.stderr.split('\n').slice(-15).join('\n'));
  t.match(r.stderr, /verdict: PASS/);
});

t.test('and on the systemd profile, whose sshd has the archive keys', async (t) => {
  const r = await kmodvm(['test', '--cache-dir', seat, '--runs-dir', runs, '--profile', 'systemd']);
  t.equal(r.exitCode, 0, r.stderr.split('\n').slice(-15).join('\n'));
  t.match(r.stderr, /verdict: PASS/);
});
