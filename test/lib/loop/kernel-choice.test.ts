// What the report says the kernel was (#27.4): the debug kernel's source
// against the image's own kernel, on this machine's real versions (the
// debug kernel built from bookworm's linux-source-6.1, the image's
// linux-image-6.1.0-57-amd64 6.1.192-3).
import t from 'tap';
import { kernelLabel } from '../../../scripts/lib/loop/kernel-choice.ts';

const manifest = { kernelVersion: '6.1.0-57-amd64', packages: { 'linux-image-6.1.0-57-amd64': '6.1.192-3', 'linux-image-amd64': '6.1.192-3' } };

t.test('the same upstream version: said once', async (t) => {
  t.equal(
    kernelLabel({ debugKernel: 'debian-12-debug' }, '6.1.192-kmodvm-debug', manifest),
    "6.1.192-kmodvm-debug (debug kernel debian-12-debug, from the source of the image's kernel 6.1.0-57-amd64, 6.1.192)",
  );
});

t.test('when they differ, both', async (t) => {
  t.equal(
    kernelLabel({ debugKernel: 'debian-12-debug' }, '6.1.180-kmodvm-debug', manifest),
    "6.1.180-kmodvm-debug (debug kernel debian-12-debug, source 6.1.180; the image's kernel 6.1.0-57-amd64 is 6.1.192-3: they differ)",
  );
});

t.test('a kernel of your own, and an image that does not say', async (t) => {
  t.equal(kernelLabel({ debugKernel: '' }, '6.1.99', manifest), '6.1.99 (--kernel-image)');
  t.equal(
    kernelLabel({ debugKernel: 'debian-12-debug' }, '6.1.192-kmodvm-debug', { kernelVersion: 'x', packages: {} }),
    '6.1.192-kmodvm-debug (debug kernel debian-12-debug)',
  );
});
