import { readFileSync } from 'node:fs';
import t from 'tap';
import { matchTokens } from '../../../scripts/lib/verdict/line-match.ts';
import { formatMismatches, kernelLines, matchTranscript, parseTranscript } from '../../../scripts/lib/verdict/transcript.ts';

const fx = (p: string): string => readFileSync(new URL(`../../fixtures/${p}`, import.meta.url), 'utf8');
const expected = parseTranscript(readFileSync(new URL('../../expected/netlink.transcript', import.meta.url), 'utf8'));
const real = { kernel: fx('pass-tcg-6.1/dmesg.log'), app: fx('pass-tcg-6.1/app.stdout') };

t.test('a real passing run matches, and the PID is captured from both sides', async (t) => {
  const r = matchTranscript(expected, real);
  t.equal(r.ok, true, formatMismatches(r, 'x'));
  t.equal(r.captures.pid, '420');
  t.match(r.captures.cpu, /^\d+$/);
});

t.test('the serial console of the same run matches the kernel section too', async (t) => {
  const r = matchTranscript(expected, { kernel: fx('pass-tcg-6.1/serial.log'), app: real.app });
  t.equal(r.ok, true, formatMismatches(r, 'x'));
});

t.test('a PID that differs between app and kernel is a mismatch that names the capture', async (t) => {
  const r = matchTranscript(expected, { kernel: real.kernel, app: real.app.replace('PID 420', 'PID 421') });
  t.equal(r.ok, false);
  t.equal(r.mismatches[0].section, 'kernel');
  t.match(r.mismatches[0].why, /\{\{pid\}\} is "420" here but "421" before/);
});

t.test('kernel lines must appear in order', async (t) => {
  const lines = real.kernel.split('\n');
  const ins = lines.findIndex((l) => l.includes('inserted'));
  const cre = lines.findIndex((l) => l.includes('creating kernel netlink socket'));
  [lines[ins], lines[cre]] = [lines[cre], lines[ins]];
  const r = matchTranscript(expected, { kernel: lines.join('\n'), app: real.app });
  t.equal(r.ok, false);
  t.match(r.mismatches[0].expected.text, /inserted$/);
});

t.test('missing first-load taint lines fail: the guest is fresh, so they must be there', async (t) => {
  const r = matchTranscript(expected, { kernel: real.kernel.replace(/.*loading out-of-tree module taints kernel.*\n/, ''), app: real.app });
  t.equal(r.ok, false);
  t.match(r.mismatches[0].expected.text, /taints kernel/);
});

t.test('app output is exact: a changed byte count and an extra line both fail with a diff', async (t) => {
  const changed = matchTranscript(expected, { kernel: real.kernel, app: real.app.replace('1040 bytes', '1041 bytes') });
  t.equal(changed.ok, false);
  const text = formatMismatches(changed, 'netlink.transcript');
  t.match(text, /app: expected \(netlink.transcript:\d+\): .*sent 1040 bytes/);
  t.match(text, /1041 bytes/);
  const extra = matchTranscript(expected, { kernel: real.kernel, app: real.app + 'stray\n' });
  t.equal(extra.ok, false);
  t.match(extra.mismatches[0].why, /more lines/);
});

t.test('timestamps and continuation indentation are stripped from kernel lines', async (t) => {
  t.same(kernelLines('[  310.858620] a: b\n               "x"\n'), ['a: b', '"x"']);
});

t.test('placeholders: kinds, anonymous, and errors that name the line', async (t) => {
  const tr = parseTranscript('[app]\nx {{n:int}} {{h:hex}} {{*}} end\n');
  t.same(matchTokens(tr.app[0].tokens, 'x 12 0xfF anything at all end'), { n: '12', h: '0xfF' });
  t.equal(matchTokens(tr.app[0].tokens, 'x 1a 0x1 y end'), undefined);
  t.throws(() => parseTranscript('[app]\n{{a:nope}}\n', 'f.txt'), /f.txt:2: unknown placeholder kind "nope"/);
  t.throws(() => parseTranscript('stray\n', 'f.txt'), /f.txt:1: a line before any/);
  t.throws(() => parseTranscript('# only a comment\n', 'f.txt'), /no expected lines/);
});

t.test('first-load lines: required on a fresh boot, not expected once the kernel had an out-of-tree module', async (t) => {
  const reload = real.kernel.replace(/.*loading out-of-tree module taints kernel.*\n/, '').replace(/.*module verification failed.*\n/, '');
  t.equal(matchTranscript(expected, { kernel: reload, app: real.app }).ok, false, 'a fresh boot must show them');
  t.equal(matchTranscript(expected, { kernel: reload, app: real.app }, { firstLoad: false }).ok, true, 'a reload need not');
  t.equal(
    matchTranscript(expected, { kernel: real.kernel.replace('inserted', 'insertd'), app: real.app }, { firstLoad: false }).ok,
    false,
    'the rest stays strict',
  );
});

t.test('app output: CRLF, NUL, a lone CR, no final newline; no [app] header means the output is not checked', async (t) => {
  const { appLines } = await import('../../../scripts/lib/verdict/transcript.ts');
  t.same(appLines('a\r\nb\0c\rd'), ['a', 'b\\0c\\rd']);
  t.same(appLines(''), [], 'nothing printed is no lines, not one empty line');
  t.same(appLines('x\n'), ['x']);
  t.same(appLines('\x1b[1mbold\x07'), ['\\x1b[1mbold\\x07']);
  t.ok(matchTranscript(parseTranscript('[app]\n'), { kernel: '', app: '' }).ok, 'an empty [app] section: the app printed nothing');
  t.notOk(matchTranscript(parseTranscript('[app]\n'), { kernel: '', app: 'hi\n' }).ok);
  t.ok(
    matchTranscript(parseTranscript('[kernel]\nm: up\n'), { kernel: '[ 1.0] m: up\n', app: 'anything\n' }).ok,
    'no [app] header: only the kernel lines are expected',
  );
  t.ok(matchTranscript(parseTranscript('[app]\nwin\n'), { kernel: '', app: 'win\r\n' }).ok, 'CRLF output matches an LF transcript');
});

t.test('captures named like Object.prototype properties are captures like any other', async (t) => {
  const tr = parseTranscript('[app]\n{{constructor:int}} {{toString}} {{constructor}}\n');
  t.ok(matchTranscript(tr, { kernel: '', app: '1 x 1\n' }).ok);
  t.notOk(matchTranscript(tr, { kernel: '', app: '1 x 2\n' }).ok);
});

t.test('matching is linear: eight {{*}} against long kernel lines that almost match returns', async (t) => {
  // Once 5.6 s for five 80-character lines, growing without bound (regex backtracking).
  const tr = parseTranscript(`[kernel]\n${'a{{*}}'.repeat(8)}b\n`);
  const line = 'a'.repeat(2000);
  const log = Array.from({ length: 200 }, () => `[    1.000000] ${line}`).join('\n');
  const r = matchTranscript(tr, { kernel: log, app: '' }); // exponential, this would never return

  t.equal(r.ok, false, 'no line ends in b');
  t.match(r.mismatches[0].why, /not found/);
  t.same(matchTranscript(tr, { kernel: `${'a-'.repeat(8)}b`, app: '' }).ok, true, 'and a line that fits matches');
});

t.test('line matching: captures as a greedy word and a lazy any would give, repeated names, and known values', async (t) => {
  const tok = (s: string) => parseTranscript(`[app]\n${s}\n`).app[0].tokens;
  t.same(matchTokens(tok('{{a:any}}-{{b:any}}'), '1-2-3'), { a: '1', b: '2-3' });
  t.same(matchTokens(tok('pid {{pid:int}} again {{pid}}'), 'pid 42 again 42'), { pid: '42' });
  t.equal(matchTokens(tok('pid {{pid:int}} again {{pid}}'), 'pid 42 again 43'), undefined);
  t.same(matchTokens(tok('pid {{pid:int}}'), 'pid 42', { pid: '42' }), {}, 'a known name is its value');
  t.equal(matchTokens(tok('pid {{pid:int}}'), 'pid 41', { pid: '42' }), undefined);
  t.same(matchTokens(tok('{{*}}'), ''), {}, 'any may be empty');
  t.equal(matchTokens(tok('x{{w}}'), 'x'), undefined, 'a word may not');
  t.same(matchTokens(tok('{{h:hex}}'), '0x1F'), { h: '0x1F' });
  t.equal(matchTokens(tok('{{h:hex}}'), 'x1F'), undefined);
});
