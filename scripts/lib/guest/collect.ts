// Output collection that stays linear in the bytes received, for output of
// any size: a buffer that grows by doubling up to a cap, and after the cap
// only a count of what was left out (shown as a note at the end). Finding a
// marker looks only at the bytes that arrived since the last look.

/** What is kept of one stream by default: 16 MiB. */
export const KEEP_BYTES = 16 * 2 ** 20;

export const truncationNote = (dropped: number): string => `\n[kmodvm: ${(dropped / 2 ** 20).toFixed(1)} MiB more output not kept]\n`;

export class Capped {
  private buf: Buffer;
  private len = 0;
  /** Bytes received in all, kept or not. */
  total = 0;

  constructor(private readonly cap = KEEP_BYTES) {
    this.buf = Buffer.alloc(Math.min(4096, cap));
  }

  push(chunk: Buffer): void {
    this.total += chunk.length;
    const room = this.cap - this.len;
    if (room <= 0) return;
    const take = Math.min(room, chunk.length);
    if (this.len + take > this.buf.length) {
      const next = Buffer.alloc(Math.min(this.cap, Math.max(this.buf.length * 2, this.len + take)));
      this.buf.copy(next, 0, 0, this.len);
      this.buf = next;
    }
    chunk.copy(this.buf, this.len, 0, take);
    this.len += take;
  }

  get dropped(): number {
    return this.total - this.len;
  }

  /** The first `upTo` bytes of the stream (default all), as text, with a note when some were not kept. */
  text(upTo = this.total): string {
    const kept = Math.min(upTo, this.len);
    const body = this.buf.subarray(0, kept).toString('utf8');
    return upTo > kept ? body + truncationNote(upTo - kept) : body;
  }
}

/**
 * Finds a marker in a stream fed chunk by chunk, looking at each byte a
 * bounded number of times: the carry is the last marker.length - 1 bytes
 * seen, so a marker split across chunks is found too. Gives the marker's
 * offset in the stream, and what followed it in that chunk.
 */
export class MarkerScan {
  private carry = Buffer.alloc(0);
  private seen = 0;
  found: { at: number; after: Buffer } | undefined;

  constructor(private readonly marker: Buffer) {}

  push(chunk: Buffer): void {
    if (this.found) {
      // Taken as soon as the marker's line is whole, so this stays short.
      this.found.after = Buffer.concat([this.found.after, chunk]);
      return;
    }
    const window = this.carry.length ? Buffer.concat([this.carry, chunk]) : chunk;
    const i = window.indexOf(this.marker);
    const start = this.seen - this.carry.length;
    if (i >= 0) {
      this.found = { at: start + i, after: Buffer.from(window.subarray(i + this.marker.length)) };
    } else {
      this.carry = Buffer.from(window.subarray(Math.max(0, window.length - (this.marker.length - 1))));
    }
    this.seen += chunk.length;
  }
}
