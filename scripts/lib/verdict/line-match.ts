// Matching one transcript line against one actual line in time linear in the
// line's length times the number of placeholders: no regex, so no
// backtracking (a line with eight {{*}} once took 5.6 s against five kernel
// lines, with the event loop blocked). A line is literals and placeholders;
// each placeholder is a run of one character class (any: possibly empty).
// reach[i][p] says whether the first i tokens can match line[0..p); a
// placeholder's step is one pass with the class's run lengths. One match is
// then read back from the end, taking for each placeholder the longest
// capture that still lets the rest match, as a greedy regex would. A name
// seen before (earlier in the line or in an earlier line) is its literal value.

export type Kind = 'word' | 'int' | 'hex' | 'any';
export type Token = { lit: string } | { name: string | undefined; kind: Kind };

const inClass = (kind: Kind, ch: string): boolean =>
  kind === 'any' ? true : kind === 'word' ? !/\s/.test(ch) : kind === 'int' ? ch >= '0' && ch <= '9' : /[0-9a-fA-FxX]/.test(ch);

/** Whether s (a whole capture) is a value of kind. */
function valid(kind: Kind, s: string): boolean {
  if (kind === 'any') return true;
  if (s === '') return false;
  if (kind === 'hex') return /^(?:0x)?[0-9a-fA-F]+$/.test(s);
  for (const ch of s) if (!inClass(kind, ch)) return false;
  return true;
}

/** Matches line against tokens; the captures of names not in known, or undefined when it does not match. */
export function matchTokens(tokens: readonly Token[], line: string, known: Readonly<Record<string, string>> = {}): Record<string, string> | undefined {
  const seen: Record<string, string> = Object.create(null) as Record<string, string>;
  // Names already captured (in earlier lines) are literals here; a name repeated within the line is resolved on the way back.
  const toks: Token[] = tokens.map((t) => ('lit' in t || !t.name || !Object.hasOwn(known, t.name) ? t : { lit: known[t.name] }));
  const n = line.length;
  const reach: Uint8Array[] = [new Uint8Array(n + 1)];
  reach[0][0] = 1;
  for (let i = 0; i < toks.length; i++) {
    const from = reach[i];
    const to = new Uint8Array(n + 1);
    const t = toks[i];
    if ('lit' in t) {
      for (let p = 0; p + t.lit.length <= n; p++) if (from[p] && line.startsWith(t.lit, p)) to[p + t.lit.length] = 1;
    } else {
      // Open from each reachable start until the class breaks: one pass, the run carried along.
      let open = false;
      for (let p = 0; p <= n; p++) {
        if (open && p > 0 && !inClass(t.kind, line[p - 1])) open = false;
        if (open) to[p] = 1;
        if (from[p]) {
          open = true;
          if (t.kind === 'any') to[p] = 1;
        }
      }
    }
    reach.push(to);
  }
  if (!reach[toks.length][n]) return undefined;
  // Back from the end: each placeholder takes the earliest start (the longest capture) the tokens before it can reach.
  const spans: [number, number][] = new Array(toks.length);
  let end = n;
  for (let i = toks.length - 1; i >= 0; i--) {
    const t = toks[i];
    if ('lit' in t) {
      spans[i] = [end - t.lit.length, end];
      end -= t.lit.length;
      continue;
    }
    // The class's run that ends here bounds the capture; its earliest reachable start is the longest capture.
    let q = end;
    while (q > 0 && inClass(t.kind, line[q - 1])) q--;
    let start = -1;
    for (let p = q; p <= end; p++) {
      if (!reach[i][p] || (p === end && t.kind !== 'any')) continue;
      if (t.kind === 'hex' && !valid('hex', line.slice(p, end))) continue;
      start = p;
      break;
    }
    if (start < 0) return undefined;
    spans[i] = [start, end];
    end = start;
  }
  for (let i = 0; i < toks.length; i++) {
    const t = toks[i];
    if ('lit' in t || !t.name) continue;
    const v = line.slice(spans[i][0], spans[i][1]);
    if (Object.hasOwn(seen, t.name) && seen[t.name] !== v) return undefined;
    seen[t.name] = v;
  }
  return seen;
}
