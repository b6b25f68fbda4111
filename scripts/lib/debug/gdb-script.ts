// gdb on a guest (issue 26.1), the pure part: a module's section addresses
// as the guest's /sys/module/<m>/sections/ gives them, and the gdb commands
// that attach to QEMU's stub, add each module's symbols at those addresses,
// map the build tree's source paths to the user's, and run the user's own
// script. gdb reads code the user built: it is started with no init files
// and with auto-loading off, so a .ko's .debug_gdb_scripts runs nothing.

export interface ModuleSymbols {
  name: string;
  /** The .ko with its debug info, on the host. */
  ko: string;
  /** Section name → load address, from the guest. */
  sections: Map<string, string>;
}

export interface GdbPlan {
  /** The stub's unix socket (the sandbox's gdb gets it as fd 4 instead: the script says `target remote | …`). */
  target: string;
  modules: readonly ModuleSymbols[];
  /** Build-tree prefix → the user's own dir, for `list` and `file.c:line` breakpoints. */
  substitute: readonly (readonly [string, string])[];
  /** The kernel's vmlinux with symbols (the debug kernel's tree), and how far KASLR moved it. */
  vmlinux?: { file: string; offset: bigint };
  /** The kernel tree's gdb helpers (lx-symbols, lx-dmesg). */
  helpers?: string;
  /** The user's gdb script (--batch FILE). */
  user?: string;
  /** Batch: detach and quit at the end, so the guest runs on; interactive: leave the prompt to the user. */
  batch: boolean;
  /** A file gdb creates once the symbols are in, before the user's script: kmodvm's sign that it may go on. */
  marker?: string;
  /** --gdb-before-load: the modules kmodvm is about to load, whose symbols go in as each one's init is called (onLoadScript). */
  onLoad?: readonly { name: string; ko: string }[];
}

/**
 * --gdb-before-load: gdb is attached before the modules load, so their
 * addresses are not known yet. A breakpoint of kmodvm's own in the kernel's
 * do_init_module (it needs the kernel's symbols) reads each module's section
 * addresses from its struct module, as the kernel filled them in before
 * calling its init, adds its symbols there (the same sections as
 * addSymbolFile), and lets the guest go on: the user's breakpoints in init
 * and probe, pending until then, resolve. The kernel's lx-symbols does the
 * same; this one also takes .init.text, and only the modules kmodvm loads.
 */
export function onLoadScript(mods: readonly { name: string; ko: string }[]): string[] {
  const table = JSON.stringify(Object.fromEntries(mods.map((m) => [m.name.replace(/-/g, '_'), m.ko])));
  return [
    'set breakpoint pending on',
    'python',
    'import gdb, json',
    `KMODVM_KO = json.loads(${JSON.stringify(table)})`,
    "SKIP = ('.gnu.linkonce.this_module', '.symtab', '.strtab')",
    'class KmodvmOnLoad(gdb.Breakpoint):',
    '    def stop(self):',
    "        mod = gdb.parse_and_eval('mod')",
    "        name = mod['name'].string()",
    '        ko = KMODVM_KO.get(name)',
    '        if ko is None:',
    '            return False',
    "        attrs = mod['sect_attrs']",
    "        secs = {attrs['attrs'][i]['battr']['attr']['name'].string(): int(attrs['attrs'][i]['address']) for i in range(int(attrs['nsections']))}",
    "        rest = ''.join(' -s %s 0x%x' % (s, a) for s, a in secs.items() if s != '.text' and a and not s.startswith('.note') and s not in SKIP)",
    "        text = (' 0x%x' % secs['.text']) if secs.get('.text') else ''",
    `        gdb.execute('add-symbol-file "%s"%s%s' % (ko, text, rest))`,
    "        gdb.write('kmodvm: %s is loading; its symbols are in\\n' % name)",
    '        return False',
    "KmodvmOnLoad('do_init_module', internal=True)",
    'end',
  ];
}

/** The guest's listing (`name:address` per line, grep's, from the command in sectionsCommand) as a map; lines that are not a section and a hex address are dropped. */
export function parseSections(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([^\s:]+):(0x[0-9a-f]+)$/.exec(line.trim());
    if (m && m[2] !== '0x0000000000000000') out.set(m[1], m[2]);
  }
  return out;
}

/** The guest command that lists a loaded module's sections and their addresses (root reads the real ones): one grep, not a cat a section (each program costs ~40 ms under TCG). */
export function sectionsCommand(name: string): string[] {
  if (!/^[\w-]+$/.test(name)) throw new Error(`not a module name: ${name}`);
  return ['sh', '-c', 'cd "/sys/module/$1/sections" && grep -s . .[!.]* *; true', 'sh', name];
}

/** gdb quotes a file name with spaces in double quotes, backslash-escaping quotes and backslashes. */
const q = (s: string): string => `"${s.replace(/[\\"]/g, (c) => `\\${c}`)}"`;

/** add-symbol-file at the module's real addresses: .text first, then every other section it has (a module whose code is all in .text.unlikely, .init.text and .exit.text has no .text). */
export function addSymbolFile(m: ModuleSymbols): string {
  const text = m.sections.get('.text');
  if (!m.sections.size) throw new Error(`module ${m.name}: the guest gave no section addresses`);
  // The kernel's own copies of the symbol table (for kallsyms) are no sections of the .ko's.
  const rest = [...m.sections].filter(([s]) => s !== '.text' && !s.startsWith('.note') && !['.gnu.linkonce.this_module', '.symtab', '.strtab'].includes(s));
  return [`add-symbol-file ${q(m.ko)}${text ? ` ${text}` : ''}`, ...rest.map(([s, a]) => `-s ${s} ${a}`)].join(' ');
}

/** The guest command whose answer kaslrOffset reads: _text's line of /proc/kallsyms (root sees the real address). */
export const KERNEL_TEXT_COMMAND: readonly string[] = ['sh', '-c', "grep ' T _text$' /proc/kallsyms"];

/** The offset KASLR moved the kernel by: _text as the guest's kallsyms says, less where x86_64 links it. */
export function kaslrOffset(kallsymsText: string, linkedAt = 0xffffffff81000000n): bigint {
  const m = /^([0-9a-f]{16}) T _text$/m.exec(kallsymsText);
  if (!m) throw new Error('no _text in /proc/kallsyms');
  return BigInt(`0x${m[1]}`) - linkedAt;
}

/** The whole script, one command a line. */
export function gdbScript(p: GdbPlan): string {
  return [
    'set pagination off',
    'set confirm off',
    'set print pretty on',
    ...(p.vmlinux ? [`symbol-file -o ${p.vmlinux.offset === 0n ? '0' : `0x${p.vmlinux.offset.toString(16)}`} ${q(p.vmlinux.file)}`] : []),
    `target remote ${p.target}`,
    ...p.modules.map(addSymbolFile),
    ...(p.onLoad ? onLoadScript(p.onLoad) : []),
    ...p.substitute.map(([from, to]) => `set substitute-path ${q(from)} ${q(to)}`),
    // source takes the rest of the line as the file name, quotes and all.
    ...(p.helpers ? [`source ${p.helpers}`] : []),
    p.onLoad
      ? `echo kmodvm: attached before ${p.onLoad.map((m) => m.name).join(', ')} load; their symbols go in as each one's init is called\\n`
      : `echo kmodvm: attached, ${p.modules.map((m) => m.name).join(', ') || 'no module'} symbols loaded\\n`,
    ...(p.marker ? [`shell touch '${p.marker.replace(/'/g, `'\\''`)}'`] : []),
    ...(p.user ? [`source ${p.user}`] : []),
    ...(p.batch ? ['detach', 'quit'] : []),
    '',
  ].join('\n');
}

/** gdb's own arguments around the script: no init files, nothing auto-loaded from the files it reads. */
export function gdbArgs(script: string, batch: boolean): string[] {
  return ['-nx', '-nh', '-q', '-iex', 'set auto-load off', '-iex', 'set debuginfod enabled off', ...(batch ? ['-batch'] : []), '-x', script];
}
