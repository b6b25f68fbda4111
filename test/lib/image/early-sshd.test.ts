// The early sshd's pure parts, on the real `ldd /usr/sbin/sshd` of the
// debian-12 image (test/fixtures/early-sshd). The boot itself is the e2e
// tests' (every lean boot uses it).
import { readFileSync } from 'node:fs';
import path from 'node:path';
import t from 'tap';
import { earlyEtc, lddPaths, SSHD_PROGRAMS } from '../../../scripts/lib/image/early-sshd.ts';

const fx = (n: string): string => readFileSync(path.join(import.meta.dirname, '../../fixtures/early-sshd', n), 'utf8');

t.test('ldd output: every shared object with its path, the loader included, the vdso left out', async (t) => {
  const libs = lddPaths(fx('ldd-sshd-debian-12.txt'));
  t.equal(libs.length, 27, '28 lines less the vdso');
  t.ok(libs.includes('/lib/x86_64-linux-gnu/libcrypto.so.3'));
  t.ok(libs.includes('/lib64/ld-linux-x86-64.so.2'), 'the dynamic loader, named as the binaries ask for it');
  t.notOk(libs.some((l) => l.includes('vdso')));
  t.ok(libs.every((l) => l.startsWith('/')));
});

t.test('a library ldd cannot find stops the image build', async (t) => {
  t.throws(() => lddPaths('\tlibwrap.so.0 => not found\n\tlibc.so.6 => /lib/x86_64-linux-gnu/libc.so.6 (0x00007f)\n'), /ldd: libwrap\.so\.0 => not found/);
});

t.test("the initrd's own /etc: root with the chroot's shell, sshd's user, sessions chrooted into /newroot", async (t) => {
  const etc = earlyEtc();
  t.match(etc.get('etc/passwd'), /^root:x:0:0:root:\/root:\/bin\/sh$/m);
  t.match(etc.get('etc/passwd'), /^sshd:x:\d+:\d+::\/run\/sshd:/m, 'privilege separation needs its user');
  t.match(etc.get('etc/ssh/sshd_config.d/00-kmodvm-initrd.conf'), /^ChrootDirectory \/newroot$/m);
  t.ok(
    [...etc.keys()].every((k) => !k.startsWith('/')),
    'paths inside the initrd',
  );
  t.same(SSHD_PROGRAMS[0], '/usr/sbin/sshd');
});
