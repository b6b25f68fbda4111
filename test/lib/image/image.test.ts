import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import ssh2 from 'ssh2';
import t from 'tap';
import { loadConfig } from '../../../scripts/lib/core/flags.ts';
import { ed25519KeyPair, findImage, imageKey, keyPairUsable } from '../../../scripts/lib/image/image.ts';

const root = path.join(import.meta.dirname, '../../..');
// A host key from a real image build (2026-11-29, debian-13): ssh2's generator
// dropped its leading zero byte, so sshd in the guest would not start with it.
const stripped = readFileSync(new URL('../../fixtures/ssh/host_ed25519-leading-zero-stripped.pub', import.meta.url), 'utf8');
const good = ssh2.utils.generateKeyPairSync('ed25519', { comment: 'good' });

t.test('a key pair whose public half lost a byte is not usable; a whole one is', async (t) => {
  t.ok(keyPairUsable(good));
  t.notOk(keyPairUsable({ private: good.private, public: stripped }));
});

t.test('ed25519KeyPair draws again past a pair ssh2 generated broken', async (t) => {
  const pairs = [{ private: good.private, public: stripped }, good];
  let calls = 0;
  t.equal(
    ed25519KeyPair('c', () => pairs[calls++]),
    good,
  );
  t.equal(calls, 2);
  t.throws(() => ed25519KeyPair('c', () => pairs[0]), /could not generate a valid ed25519 key pair/);
  const real = ed25519KeyPair('kmodvm-test');
  t.ok(keyPairUsable(real));
  t.match(real.public, /^ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAI[A-Za-z0-9+/]{43} kmodvm-test$/, 'a 32-byte key');
});

t.test('a cached image holding such a key is reported broken, with what to do', async (t) => {
  const cache = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-image-'));
  const { config: c } = loadConfig([], { KMODVM_CACHE_DIR: cache }, root);
  const dir = path.join(cache, 'images', imageKey(c).key);
  mkdirSync(dir, { recursive: true });
  writeFileSync(path.join(dir, 'manifest.json'), JSON.stringify({ recipe: { kernelCmdline: ['console=ttyS0'] } }));
  for (const f of ['rootfs.qcow2', 'vmlinux', 'initrd-lean.cpio']) writeFileSync(path.join(dir, f), '');
  writeFileSync(path.join(dir, 'id_ed25519'), good.private);
  writeFileSync(path.join(dir, 'host_ed25519.pub'), good.public + '\n');
  t.ok(await findImage(c), 'whole keys: the image is found');
  writeFileSync(path.join(dir, 'host_ed25519.pub'), stripped);
  await t.rejects(findImage(c), { failure: 'image', message: /is broken: host_ed25519\.pub is not a valid key/, hint: /rm -rf / });
});
