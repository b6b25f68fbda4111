// --update on recorded output: the transcript it writes matches the run it
// was written from, with {{pid}} where the command's PID was.
import { readFileSync } from 'node:fs';
import t from 'tap';
import { parseStateAfter } from '../../../scripts/lib/suite/test-plan.ts';
import { commandPid, kernelRecords, transcriptDiff, transcriptFromRun } from '../../../scripts/lib/suite/update.ts';
import { matchTranscript, parseTranscript } from '../../../scripts/lib/verdict/transcript.ts';

const fx = (f: string): string => readFileSync(new URL(`../../fixtures/${f}`, import.meta.url), 'utf8');
const after = parseStateAfter(fx('suite-6.1/ctl-read.state-after.stdout'));
const app = fx('suite-6.1/ctl-read.run.stdout');

t.test('written from a recorded run, it matches that run', async (t) => {
  const { text } = transcriptFromRun({ app, kernelLog: after.dmesg, modules: ['bebop_core', 'bebop_user'], shellPid: after.pid, header: 'test ctl-read' });
  t.match(text, /^# test ctl-read\n\[kernel\]\nbebop_core: loading out-of-tree module taints kernel\.\n/);
  t.match(text, /bebop_core: ioctl from pid \{\{pid\}\}\n/);
  t.match(text, /\[app\]\npid \{\{pid:int\}\}: value 43 name bebop\n$/);
  const m = matchTranscript(parseTranscript(text), { kernel: after.dmesg, app });
  t.ok(m.ok, 'the run it came from passes it');
  t.equal(m.captures.pid, '157');
  t.notOk(matchTranscript(parseTranscript(text), { kernel: after.dmesg.replace('pid 157', 'pid 158'), app }).ok, 'and the PID ties app and kernel');
});

t.test("the command's PID: the shell's next, else its own, else none", async (t) => {
  t.equal(commandPid('156', 'pid 157: x'), '157');
  t.equal(commandPid('156', 'pid 156'), '156');
  t.equal(commandPid('156', 'value 1560 and 56'), undefined);
  t.equal(commandPid(undefined, '1'), undefined);
});

t.test('NUL, CR and a missing final newline are written as the matcher reads them', async (t) => {
  const out = fx('suite-6.1/shell-script.run.stdout');
  const { text } = transcriptFromRun({ app: out, kernelLog: '', modules: [], header: 'x' });
  t.match(text, /\[app\]\ndev present: bebop\nnul\\0here\nlast line without a newline\n$/);
  t.ok(matchTranscript(parseTranscript(text), { kernel: '', app: out }).ok);
});

t.test("kernel records keep their continuation lines; other modules' lines are left out", async (t) => {
  t.same(kernelRecords('[    1.5] a: x\n               "payload"\n[    1.6] b: y\n'), [['a: x', '"payload"'], ['b: y']]);
  const { text } = transcriptFromRun({ app: '', kernelLog: '[    1.5] a: x {{y}}\n               "payload"\n[    1.6] ab: y\n', modules: ['a'], header: 'h' });
  t.match(text, /\[kernel\]\na: x \{\{\*\}\}\{y\}\}\n"payload"\n\[app\]\n$/, 'braces in the output cannot become placeholders');
});

t.test('the diff it prints', async (t) => {
  t.equal(transcriptDiff('f', 'a\n', 'a\n'), '');
  t.match(transcriptDiff('f', 'a\nb\n', 'a\nc\n'), /-b\n\+c/);
  t.match(transcriptDiff('f', undefined, 'a\n'), /--- \/dev\/null/);
});

t.test("--update takes the lines the test's modules printed by their printk formats, and says what it left out (#29.16)", async (t) => {
  const { printkFormats } = await import('../../../scripts/lib/verdict/printk-origin.ts');
  const { leftOutLine } = await import('../../../scripts/lib/suite/update.ts');
  const ko = (f: string): Buffer => readFileSync(new URL(`../../fixtures/printk-origin/${f}`, import.meta.url));
  const kernelLog = fx('printk-origin/jool-4.1.9-load-unload.dmesg');
  const r = transcriptFromRun({
    app: '',
    kernelLog,
    modules: ['jool_common', 'jool_siit', 'jool'],
    formats: [...printkFormats(ko('jool_siit.ko')), ...printkFormats(ko('jool.ko'))],
    header: 'h',
  });
  t.match(r.text, /\[kernel\]\njool_common: loading out-of-tree module taints kernel\.\n/, 'by name, as before');
  t.match(r.text, /\nSIIT Jool v4\.1\.9\.0 module inserted\.\nNAT64 Jool v4\.1\.9\.0 module inserted\.\n/, 'by their formats: lines with no module name');
  t.same(r.leftOut, [
    'random: crng reseeded due to virtual machine fork',
    'Jool: Core Jool v4.1.9.0 module inserted.',
    'Jool: Core Jool v4.1.9.0 module removed.',
  ]);
  t.ok(matchTranscript(parseTranscript(r.text), { kernel: kernelLog, app: '' }).ok, 'the run it came from passes it');
  t.match(
    leftOutLine(r.leftOut, ['jool_common']),
    /^update: left out 3 kernel line\(s\) that no module of the test printed .*; jool_common built in the guest: only their "name:" lines were taken:\n {2}random: crng/,
  );
  t.equal(leftOutLine([], []), 'update: [kernel] has every kernel line of the test');
});
