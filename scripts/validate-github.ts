// npm run validate:github [-- FILE...]: validates the workflow(s) and action.yml
// against GitHub's own schemas (@actions/workflow-parser). Prints one line per
// file ("ok FILE" or the errors) and exits 1 on any error.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { NoOperationTraceWriter, parseWorkflow } from '@actions/workflow-parser';
import { parseAction } from '@actions/workflow-parser/actions/index';
import { defaultRoot } from './lib/core/config.ts';

const root = defaultRoot();
const files = process.argv.slice(2).length ? process.argv.slice(2) : ['.github/workflows/vm-test.yml', 'action.yml'];
let bad = 0;
for (const f of files) {
  const content = readFileSync(path.resolve(root, f), 'utf8');
  const name = path.basename(f);
  const r = /^action\.ya?ml$/.test(name)
    ? parseAction({ name: f, content }, new NoOperationTraceWriter())
    : parseWorkflow({ name: f, content }, new NoOperationTraceWriter());
  const errs = r.context.errors.getErrors().map((e) => e.message);
  if (errs.length) bad++;
  process.stdout.write(errs.length ? errs.map((e) => `error ${e}`).join('\n') + '\n' : `ok ${f}\n`);
}
process.exitCode = bad ? 1 : 0;
