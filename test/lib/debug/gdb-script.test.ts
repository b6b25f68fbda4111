import { readFileSync } from 'node:fs';
import t from 'tap';
import { addSymbolFile, gdbArgs, gdbScript, kaslrOffset, onLoadScript, parseSections, sectionsCommand } from '../../../scripts/lib/debug/gdb-script.ts';

const fixture = (f: string): string => readFileSync(new URL(`../../fixtures/gdb/${f}`, import.meta.url), 'utf8');

t.test("the guest's section listing of the netlink demo (recorded): every section at its address, .text among them", async (t) => {
  const s = parseSections(fixture('sections-netlink_simple_intf.txt'));
  t.match(s.get('.text'), /^0xffffffffc0[0-9a-f]{6}$/);
  t.ok(s.has('.data') && s.has('.bss') && s.has('.rodata'));
  t.same(
    parseSections('.text:0x0000000000000000\ngarbage\n.data:0xffffffffc0001000\n'),
    new Map([['.data', '0xffffffffc0001000']]),
    'a zero address and junk are dropped',
  );
});

t.test("add-symbol-file: .text first, the others with -s, without the kernel's copies of the symbol table", async (t) => {
  const sections = parseSections(fixture('sections-netlink_simple_intf.txt'));
  const line = addSymbolFile({ name: 'netlink_simple_intf', ko: '/b/m n/x.ko', sections });
  t.match(line, new RegExp(`^add-symbol-file "/b/m n/x.ko" ${sections.get('.text')} -s `));
  t.match(line, new RegExp(`-s \\.data ${sections.get('.data')}`));
  t.notMatch(line, /\.symtab|\.strtab|-s \.text /);
  t.throws(() => addSymbolFile({ name: 'm', ko: 'x.ko', sections: new Map() }), /no section addresses/);
  const cold = addSymbolFile({ name: 'alpha', ko: '/a.ko', sections: new Map([['.text.unlikely', '0xffffffffc0288000']]) });
  t.equal(cold, 'add-symbol-file "/a.ko" -s .text.unlikely 0xffffffffc0288000', 'all its code in .text.unlikely: no .text to give');
});

t.test('the script: attach, symbols, the path map, the marker, the user script; batch detaches so the guest runs on', async (t) => {
  const sections = new Map([['.text', '0xffffffffc0000000']]);
  const s = gdbScript({
    target: '| relay',
    modules: [{ name: 'm', ko: '/t/m.ko', sections }],
    substitute: [['/cache/tree', '/home/u/drv']],
    vmlinux: { file: '/k/vmlinux', offset: 0x2a000000n },
    user: '/home/u/bp.gdb',
    batch: true,
    marker: "/r/it's",
  }).split('\n');
  t.equal(s[s.indexOf('target remote | relay') - 1], 'symbol-file -o 0x2a000000 "/k/vmlinux"', 'the kernel first, moved by KASLR');
  t.ok(s.includes('set substitute-path "/cache/tree" "/home/u/drv"'));
  t.ok(s.indexOf("shell touch '/r/it'\\''s'") < s.indexOf('source /home/u/bp.gdb'), 'the marker before the user script');
  t.same(s.slice(-3), ['detach', 'quit', '']);
  t.notOk(gdbScript({ target: 'x', modules: [], substitute: [], batch: false }).includes('detach'), 'at a terminal the user decides');
});

t.test("gdb reads the user's files with no init files and nothing auto-loaded (a .ko's .debug_gdb_scripts runs nothing)", async (t) => {
  const a = gdbArgs('/r/s.gdb', true);
  t.ok(a.includes('-nx') && a.includes('-nh') && a.includes('-batch'));
  t.equal(a[a.indexOf('set auto-load off') - 1], '-iex');
  t.notOk(gdbArgs('/r/s.gdb', false).includes('-batch'));
});

t.test("KASLR: the offset from kallsyms' _text; a module name is checked before it reaches the guest's sh", async (t) => {
  t.equal(kaslrOffset('ffffffff9a000000 T _text\n'), 0x19000000n);
  t.equal(kaslrOffset('ffffffff81000000 T _text\n'), 0n);
  t.throws(() => kaslrOffset(''), /no _text/);
  t.same(sectionsCommand('edu').slice(-1), ['edu'], 'the name is an argument, not part of the script');
  t.throws(() => sectionsCommand('x; reboot'), /not a module name/);
});

t.test(
  "--gdb-before-load: kmodvm's own breakpoint in do_init_module adds the module's symbols from its struct module, for kmodvm's modules only",
  async (t) => {
    const lines = onLoadScript([{ name: 'nl-demo', ko: '/b/nl-demo.ko' }]);
    t.equal(lines[0], 'set breakpoint pending on', "the user's breakpoints in the module wait for its symbols");
    t.same([lines[1], lines.at(-1)], ['python', 'end']);
    t.ok(lines.includes(`KMODVM_KO = json.loads("{\\"nl_demo\\":\\"/b/nl-demo.ko\\"}")`), 'by the name the kernel gives it (- is _)');
    t.ok(lines.includes("KmodvmOnLoad('do_init_module', internal=True)"));
    t.ok(lines.some((l) => l.includes("gdb.execute('add-symbol-file")));
    t.ok(lines.includes('        return False'), 'it never stops the guest itself');
    const script = gdbScript({ target: '| x', modules: [], substitute: [], batch: true, onLoad: [{ name: 'm', ko: '/m.ko' }] });
    t.match(script, /target remote \| x\nset breakpoint pending on\npython\n[\s\S]*\nend\n/);
    t.match(script, /echo kmodvm: attached before m load; their symbols go in as each one's init is called/);
    t.notMatch(gdbScript({ target: '| x', modules: [], substitute: [], batch: true }), /python/, 'without --gdb-before-load, no breakpoint of ours');
  },
);
