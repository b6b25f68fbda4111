// An upload that failed says where (#29.14), on the errors the real staging
// throws: the host's side is a setup failure (exit 3) that names the host,
// the guest's the upload's (exit 6) that sends the user to its console.
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { EXIT_CODES } from '../../../scripts/lib/core/errors.ts';
import { stageTrees } from '../../../scripts/lib/guest/upload.ts';
import { uploadFailed } from '../../../scripts/lib/suite/prepare.ts';

const thrown = (p: Promise<unknown>): Promise<Error> =>
  p.then(
    () => new Error('no error'),
    (e: Error) => e,
  );

t.test("staging on the host fails: the host's class and words", async (t) => {
  const bad = await thrown(stageTrees('/root/kmodvm', [{ localDir: os.tmpdir(), sub: '../x', files: [] }]));
  const c = uploadFailed(bad, 3);
  t.equal(c.failure, 'setup');
  t.equal(EXIT_CODES[c.failure!], 3);
  t.match(c.message, /^on the host: upload: "\.\.\/x" is not a plain directory name/);
  t.match(c.evidence, /next: this failed on the host, before anything reached the guest/);
  const gone = await thrown(stageTrees('/root/kmodvm', [{ localDir: path.join(os.tmpdir(), `kmodvm-no-such-${process.pid}`), sub: '.', files: ['a.c'] }]));
  t.equal(uploadFailed(gone, 1).failure, 'setup', `a file the host cannot read (${gone.message})`);
});

t.test("the guest's side fails: the upload's class, and its console", async (t) => {
  const c = uploadFailed(new Error('(SSH) Channel open failure: open failed'), 3);
  t.equal(c.failure, 'upload');
  t.equal(EXIT_CODES[c.failure!], 6);
  t.match(c.evidence, /look at the serial console/);
});
