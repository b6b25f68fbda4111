// Which kernel log lines a module printed, by their origin (#29.16): the
// printk formats compiled into the module's own .ko. pr_info() and friends
// store their format with KERN_SOH and the level ("\x016Jool: Core Jool
// v%s module inserted.\n"), pr_fmt's prefix already in it; dev_info() and
// netdev_info() store theirs bare, and the kernel prints them after
// "<driver> <device>: ". A line is the module's when it is one of those
// formats with each conversion (%d, %s, %pI4 …) standing for any text.
// Pure. Matching is a wildcard match (greedy, back to the last conversion):
// linear in practice, O(line × format) at worst, with lines and formats
// capped, so no input can stall the event loop the way a regex built from a
// format with many %s could.

/** A format as literal pieces between its conversions. */
export interface PrintkFormat {
  text: string;
  pieces: string[];
  /** Printed after "<driver> <device>: " (dev_*), not as the whole line. */
  bare: boolean;
}

const MAX_FORMAT = 512;
const MAX_LINE = 1024;
/** A format with fewer literal letters than this ("%s\n", "%d: %s") would claim any line. */
const MIN_LETTERS = 4;

// %%, or a printf conversion as the kernel's vsprintf reads it: flags, width, precision, length, the conversion, and %p's extension letters.
const CONVERSION = /%%|%[-+ #0]*(?:\*|\d+)?(?:\.(?:\*|\d+))?(?:hh|h|ll|l|z|t|j|L)?(?:p[A-Za-z0-9]*|[diouxXcs])/g;

/** The literal pieces of a format (%% is a literal %). */
export function piecesOf(format: string): string[] {
  const out: string[] = [];
  let cur = '';
  let last = 0;
  for (const m of format.matchAll(CONVERSION)) {
    cur += format.slice(last, m.index);
    last = m.index + m[0].length;
    if (m[0] === '%%') cur += '%';
    else {
      out.push(cur);
      cur = '';
    }
  }
  out.push(cur + format.slice(last));
  return out;
}

const letters = (pieces: readonly string[]): number => pieces.join('').replace(/[^A-Za-z]/g, '').length;

function formatOf(text: string, bare: boolean): PrintkFormat | undefined {
  // One line of the format: the kernel prints a format's later lines as lines of their own.
  const first = text.replace(/\n$/, '').split('\n')[0] ?? '';
  const pieces = piecesOf(first);
  return letters(pieces) >= MIN_LETTERS ? { text: first, pieces, bare } : undefined;
}

/**
 * The printk formats in a module's .ko: KERN_SOH strings (not KERN_CONT
 * fragments), and bare strings ending in a newline (dev_*'s). A linear scan
 * of the file's bytes.
 */
export function printkFormats(ko: Buffer): PrintkFormat[] {
  const s = ko.toString('latin1');
  const out = new Map<string, PrintkFormat>();
  const add = (f: PrintkFormat | undefined): void => {
    if (f && !out.has(`${f.bare}${f.text}`)) out.set(`${f.bare}${f.text}`, f);
  };
  for (const m of s.matchAll(/\x01([0-7d])([\t\n\x20-\x7e]{1,512})\x00/g)) add(formatOf(m[2]!, false));
  for (const m of s.matchAll(/\x00([\t\x20-\x7e][\t\n\x20-\x7e]{3,510}\n)\x00/g)) if (m[1]!.length <= MAX_FORMAT) add(formatOf(m[1]!, true));
  return [...out.values()];
}

/** Whether text is pieces joined by any text (each join a conversion). */
export function wildcardMatch(text: string, pieces: readonly string[]): boolean {
  if (pieces.length === 1) return text === pieces[0];
  const first = pieces[0]!;
  const last = pieces.at(-1)!;
  if (!text.startsWith(first) || !text.endsWith(last) || text.length < first.length + last.length) return false;
  // Each middle piece at its leftmost place after the one before: a conversion may match any text, so leftmost is never worse.
  let at = first.length;
  const end = text.length - last.length;
  for (const p of pieces.slice(1, -1)) {
    const k = text.indexOf(p, at);
    if (k < 0 || k + p.length > end) return false;
    at = k + p.length;
  }
  return true;
}

/** A test of whether a kernel line (its message, timestamp removed) is one of formats. */
export function printedBy(formats: readonly PrintkFormat[]): (line: string) => boolean {
  const whole = formats.filter((f) => !f.bare);
  const bare = formats.filter((f) => f.bare);
  return (line) => {
    if (line.length > MAX_LINE) return false;
    if (whole.some((f) => wildcardMatch(line, f.pieces))) return true;
    // dev_info(dev, …): "<driver> <device>: message".
    const k = line.indexOf(': ');
    if (k < 0) return false;
    const msg = line.slice(k + 2);
    return [...whole, ...bare].some((f) => wildcardMatch(msg, f.pieces));
  };
}
