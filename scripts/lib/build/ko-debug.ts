// What a built .ko says about itself, read with binutils (readelf, addr2line)
// inside the build sandbox: the .ko is the code under test, and its ELF is
// parsed, not trusted. Its section sizes place a leak's allocation site
// (verdict/leaks.ts); its symbols and line tables turn a report's
// func+off/size [module] into the module's source line.
import path from 'node:path';
import { runSandboxed } from './sandbox.ts';

export interface KoSymbol {
  name: string;
  section: string;
  value: bigint;
  size: bigint;
}

export interface KoInfo {
  /** Section name → size, for the sections that hold code. */
  textSizes: Map<string, bigint>;
  /** Function symbols. */
  functions: KoSymbol[];
}

const TIMEOUT_MS = 20_000;

async function tool(cmd: string, args: string[], ko: string): Promise<string> {
  const r = await runSandboxed(cmd, args, { writable: [], readable: [path.dirname(ko)], tmp: false }, { timeoutMs: TIMEOUT_MS });
  if (r.exitCode !== 0) throw new Error(`${cmd} ${ko}: ${r.reason}: ${r.stderr.trim().split('\n')[0] ?? ''}`);
  return r.stdout;
}

/** `readelf -SW`'s section table: [index] → name and size. */
export function parseSections(out: string): Map<number, { name: string; size: bigint; exec: boolean }> {
  const m = new Map<number, { name: string; size: bigint; exec: boolean }>();
  for (const line of out.split('\n')) {
    const r = /^\s*\[\s*(\d+)\]\s+(\S+)\s+\S+\s+[0-9a-f]+\s+[0-9a-f]+\s+([0-9a-f]+)\s+[0-9a-f]+\s+(\S*)/.exec(line);
    if (r) m.set(Number(r[1]), { name: r[2], size: BigInt(`0x${r[3]}`), exec: r[4].includes('X') });
  }
  return m;
}

/** `readelf -sW`'s FUNC symbols, with their sections named. */
export function parseSymbols(out: string, sections: ReadonlyMap<number, { name: string }>): KoSymbol[] {
  const syms: KoSymbol[] = [];
  for (const line of out.split('\n')) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8 || f[3] !== 'FUNC' || !/^\d+$/.test(f[6])) continue;
    const section = sections.get(Number(f[6]))?.name;
    if (section) syms.push({ name: f[7], section, value: BigInt(`0x${f[1]}`), size: BigInt(f[2].startsWith('0x') ? f[2] : Number(f[2])) });
  }
  return syms;
}

export async function koInfo(ko: string): Promise<KoInfo> {
  const sections = parseSections(await tool('readelf', ['-SW', ko], ko));
  const textSizes = new Map([...sections.values()].filter((s) => s.exec && s.size > 0n).map((s) => [s.name, s.size] as const));
  return { textSizes, functions: parseSymbols(await tool('readelf', ['-sW', ko], ko), sections) };
}

/** The function holding section+offset, as func+0xoff/0xsize. */
export function siteName(info: KoInfo, section: string, offset: bigint): string | undefined {
  const f = info.functions.find((s) => s.section === section && offset >= s.value && offset < s.value + s.size);
  return f && `${f.name}+0x${(offset - f.value).toString(16)}/0x${f.size.toString(16)}`;
}

/** `addr2line -a -f -i`'s answer: per address, the outermost frame's file:line (the module's own function, past any inlined header code). */
export function parseAddr2line(out: string): (string | undefined)[] {
  const groups: string[][] = [];
  for (const line of out.split('\n')) {
    if (/^0x[0-9a-f]+$/.test(line)) groups.push([]);
    else if (groups.length && line) groups[groups.length - 1].push(line);
  }
  return groups.map((g) => {
    const loc = g[g.length - 1];
    return loc && !loc.startsWith('??') ? loc.replace(/ \(discriminator \d+\)$/, '') : undefined;
  });
}

/** Source lines (file:line) for offsets into one of the .ko's sections. */
export async function sourceLines(ko: string, section: string, offsets: readonly bigint[]): Promise<(string | undefined)[]> {
  if (!offsets.length) return [];
  const out = await tool('addr2line', ['-a', '-f', '-i', '-j', section, '-e', ko, ...offsets.map((o) => `0x${o.toString(16)}`)], ko);
  return parseAddr2line(out);
}
