// Which of a suite's tests this run takes: --only NAME or glob (several
// flags add up), then --shard I/N (round-robin over the suite's order, so
// each shard gets every N-th test and the shards together run each test once).
import picomatch from 'picomatch';
import { KmodvmError } from '../core/errors.ts';

export interface Shard {
  index: number;
  total: number;
}

export function parseShard(s: string): Shard {
  const m = /^(\d+)\/(\d+)$/.exec(s.trim());
  const index = m ? Number(m[1]) : NaN;
  const total = m ? Number(m[2]) : NaN;
  if (!m || total < 1 || total > 1000 || index < 1 || index > total) {
    throw new KmodvmError('usage', `--shard must be I/N with 1 <= I <= N <= 1000, got ${JSON.stringify(s)}`, {
      hint: 'for example --shard 2/4 runs the second of four shards',
    });
  }
  return { index, total };
}

export function selectTests<T extends { name: string }>(tests: readonly T[], o: { only?: readonly string[]; shard?: Shard }): T[] {
  let out = [...tests];
  if (o.only?.length) {
    const match = picomatch(o.only as string[]);
    out = out.filter((t) => match(t.name));
    if (!out.length)
      throw new KmodvmError('usage', `--only ${o.only.join(', ')} matches no test of the suite`, {
        hint: `the tests are: ${tests.map((t) => t.name).join(', ')}`,
      });
  }
  if (o.shard) out = out.filter((_, i) => i % o.shard!.total === o.shard!.index - 1);
  return out;
}
