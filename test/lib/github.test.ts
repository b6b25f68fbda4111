// The workflow and the action can't run here, so they are validated against
// GitHub's own schemas (@actions/workflow-parser) and checked for the
// commands the README documents.
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execa } from 'execa';
import t from 'tap';

const root = new URL('../../', import.meta.url).pathname;
const validate = (files: string[]) =>
  execa(path.join(root, 'node_modules/.bin/tsx'), [path.join(root, 'scripts/validate-github.ts'), ...files], { reject: false });
const read = (p: string): string => readFileSync(new URL(`../../${p}`, import.meta.url), 'utf8');

t.test("the workflow and the action are valid against GitHub's schemas", async (t) => {
  const r = await validate([]);
  t.equal(r.stdout, 'ok .github/workflows/vm-test.yml\nok action.yml');
  t.equal(r.exitCode, 0);
});

t.test('the validator does reject a broken workflow and a broken action (it is not a stub)', async (t) => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-gh-'));
  writeFileSync(path.join(dir, 'bad.yml'), 'on: push\njobs:\n  b:\n    runs-on: ubuntu-latest\n    stepz: []\n');
  writeFileSync(path.join(dir, 'action.yml'), 'name: x\ndescription: y\nruns:\n  using: composite\n  stepz: []\n');
  const r = await validate([path.join(dir, 'bad.yml'), path.join(dir, 'action.yml')]);
  t.equal(r.exitCode, 1);
  t.match(r.stdout, /bad\.yml \(Line: 5, Col: 5\): Unexpected value 'stepz'/);
  t.match(r.stdout, /action\.yml \(Line: 5, Col: 3\): Unexpected value 'stepz'/);
});
t.test('the workflow runs the same commands as the README, through the repo action', async (t) => {
  const wf = read('.github/workflows/vm-test.yml');
  const action = read('action.yml');
  t.match(wf, /uses: \.\//, "the workflow uses this repository's action, so the two share one definition");
  t.match(wf, /run: npm test/);
  t.match(action, /scripts\/kmodvm\.ts test /, 'the action runs vm:test');
  t.match(action, /scripts\/kmodvm\.ts preflight/, 'host packages come from the preflight, not a separate list');
  t.match(action, /KERNEL=="kvm", GROUP="kvm", MODE="0666", OPTIONS\+="static_node=kvm"/);
  t.match(action, /udevadm trigger --name-match=kvm/);
  t.match(action, /actions\/cache@v4[\s\S]*key: kmodvm-image-\$\{\{ inputs\.kernel \}\}-\$\{\{ env\.KMODVM_IMAGE_KEY \}\}/);
  t.match(wf, /accel: kvm/);
  t.match(wf, /action-junit-report/);
  t.match(wf, /upload-artifact[\s\S]*if: failure\(\)|if: failure\(\)[\s\S]*upload-artifact/);
});
