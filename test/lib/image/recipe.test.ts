import path from 'node:path';
import t from 'tap';
import {
  initramfsToolsFiles,
  loadRecipe,
  mmdebstrapArgs,
  recipeHash,
  recipeInputs,
  validateRecipe,
  withLoginShell,
} from '../../../scripts/lib/image/recipe.ts';

const qemuDir = new URL('../../../qemu/', import.meta.url).pathname;
const recipe = loadRecipe(path.join(qemuDir, 'kernels/debian-12.json'));

t.test('the shipped recipe holds what the issue asks for', async (t) => {
  t.equal(recipe.suite, 'bookworm');
  for (const p of ['linux-image-amd64', 'linux-headers-amd64', 'gcc', 'make', 'libc6-dev', 'kmod', 'openssh-server', 'iproute2'])
    t.ok(recipe.packages.includes(p), p);
  t.ok(recipe.kernelCmdline.includes('panic=-1'));
});

t.test('the hash is stable, and changes with the recipe or any guest file', async (t) => {
  const inputs = recipeInputs(qemuDir, recipe);
  const h = recipeHash(inputs);
  t.match(h, /^[0-9a-f]{16}$/);
  t.equal(recipeHash(recipeInputs(qemuDir, recipe)), h);
  t.equal(recipeHash({ ...inputs, files: [...inputs.files].reverse() }), h, 'file order does not matter');
  t.not(recipeHash({ ...inputs, recipe: { ...recipe, imageSizeMiB: recipe.imageSizeMiB + 1 } }), h);
  t.not(recipeHash({ ...inputs, recipe: { ...recipe, packages: [...recipe.packages, 'strace'] } }), h);
  const files = inputs.files.map(([n, c]) => [n, n === 'initrd-init.sh' ? c + '#\n' : c] as [string, string]);
  t.not(recipeHash({ ...inputs, files }), h);
});

t.test('mmdebstrap arguments: no shell snippets, default mirror unless overridden', async (t) => {
  const plan = { essentialOverlay: '/t/e', customizeOverlay: '/t/o', target: '/t/rootfs', mirror: '' };
  const a = mmdebstrapArgs(recipe, plan);
  t.same(a.slice(-2), ['bookworm', '/t/rootfs']);
  t.ok(a.includes('--essential-hook=sync-in /t/e /'));
  t.ok(a.includes('--customize-hook=sync-in /t/o /'));
  t.ok(a.includes('--dpkgopt=path-exclude=/usr/share/doc/*'));
  t.match(
    a.find((x) => x.startsWith('--include=')),
    /linux-image-amd64/,
  );
  t.same(mmdebstrapArgs(recipe, { ...plan, mirror: 'http://mirror.local/debian' }).slice(-1), ['http://mirror.local/debian']);
});

t.test('initramfs-tools is configured for a small gzip initrd', async (t) => {
  const f = Object.fromEntries(initramfsToolsFiles(recipe));
  t.equal(f['etc/initramfs-tools/conf.d/kmodvm.conf'], 'MODULES=list\nCOMPRESS=gzip\n');
  t.match(f['etc/initramfs-tools/modules'], /^virtio_pci\n/);
});

t.test('a bad recipe names the field', async (t) => {
  t.throws(() => validateRecipe({ ...recipe, suite: 'Bookworm!' }, 'r.json'), /r.json: field `suite`/);
  t.throws(
    () => validateRecipe({ ...recipe, packages: ['gcc'] }, 'r.json'),
    /field `packages` must include a kernel: linux-image-amd64, linux-image-cloud-amd64, linux-image-rt-amd64/,
  );
  t.doesNotThrow(
    () => validateRecipe({ ...recipe, packages: recipe.packages.map((p: string) => p.replace('linux-image-amd64', 'linux-image-cloud-amd64')) }, 'r.json'),
    'the cloud flavour is a kernel too',
  );
  t.throws(() => validateRecipe({ ...recipe, imageSizeMiB: 10 }, 'r.json'), /field `imageSizeMiB`/);
  t.throws(() => validateRecipe({ ...recipe, kernelCmdline: 'x' }, 'r.json'), /field `kernelCmdline`/);
});

t.test('root gets /bin/sh as its login shell; other users and lines are untouched', async (t) => {
  // The first lines of a real bookworm /etc/passwd, from an image built by mmdebstrap.
  const passwd = 'root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n';
  t.equal(
    withLoginShell(passwd, 'root', '/bin/sh'),
    'root:x:0:0:root:/root:/bin/sh\ndaemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\nsshd:x:100:65534::/run/sshd:/usr/sbin/nologin\n',
  );
  t.throws(() => withLoginShell(passwd, 'nobody', '/bin/sh'), /no user nobody/);
});

t.test("the overlay's symlinks come from qemu/guest-links.json (npm pack drops symlinks) and key the image as links did", async (t) => {
  const { guestLinks, recipeInputs, loadRecipe } = await import('../../../scripts/lib/image/recipe.ts');
  const qemu = new URL('../../../qemu', import.meta.url).pathname;
  const links = guestLinks(qemu);
  t.equal(links['etc/systemd/system/multi-user.target.wants/kmodvm-ready.service'], '/etc/systemd/system/kmodvm-ready.service');
  const inputs = recipeInputs(qemu, loadRecipe(`${qemu}/kernels/debian-12.json`));
  t.ok(
    inputs.files.some(
      ([n, c]) =>
        n === 'guest/etc/systemd/system/multi-user.target.wants/systemd-networkd.service' && c === 'symlink:/lib/systemd/system/systemd-networkd.service',
    ),
  );
});

t.test(
  "the image overlay has no top-level bin, sbin or lib: sync-in's tar would put a real directory in place of Debian's merged-/usr link (it left /sbin without modprobe, #29.11)",
  async (t) => {
    const { existsSync } = await import('node:fs');
    const root = new URL('../../../', import.meta.url).pathname;
    for (const d of ['bin', 'sbin', 'lib', 'lib32', 'lib64', 'libx32']) t.notOk(existsSync(`${root}qemu/guest/${d}`), `qemu/guest/${d}`);
  },
);
