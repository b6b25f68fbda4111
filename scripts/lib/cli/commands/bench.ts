// kmodvm bench (npm run bench): medians over N runs of every figure, measured
// in this one run; writes bench.md and bench.json into runs/bench-<time>/.
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { KmodvmError } from '../../core/errors.ts';
import { chooseAccel, hostFacts } from '../../host/accel.ts';
import { ensureImage } from '../../image/build.ts';
import { benchCli } from '../../loop/bench-cli.ts';
import { benchDebugging } from '../../loop/bench-debugging.ts';
import { type Bench, benchBoot, benchClassic, benchFloor, benchSandbox, benchScale, benchWarm, benchWatch } from '../../loop/bench-rows.ts';
import { type BenchRow, markdownTable, summarize } from '../../loop/bench-table.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const { config: c, own } = i.parse();
  const runs = own.runs === undefined ? 5 : Number(own.runs);
  if (!Number.isInteger(runs) || runs < 1 || runs > 100 || !/^\d+$/.test(String(own.runs ?? 5)))
    throw new KmodvmError('usage', `--runs must be a whole number from 1 to 100, got ${JSON.stringify(own.runs)}`, { hint: 'kmodvm bench --runs 3' });
  // --rows floor,boot_to_ssh: measure just these rows (for iterating on one figure).
  const only = typeof own.rows === 'string' ? new Set(own.rows.split(',')) : undefined;
  const want = (key: string): boolean => !only || only.has(key);
  const img = await ensureImage(c, log);
  const { accel } = chooseAccel(c.accel, hostFacts());
  const out = path.join(c.runsDir, `bench-${new Date().toISOString().replace(/[:.]/g, '-')}`);
  await mkdir(out, { recursive: true });
  const rows: BenchRow[] = [];
  const row = (key: string, label: string): BenchRow => {
    const r = { key, label, samples: [] as number[] };
    rows.push(r);
    return r;
  };

  const b: Bench = { c, img, accel, out, runs, want, row, log };
  for (const measure of [benchFloor, benchBoot, benchWarm, benchWatch, benchScale, benchClassic, benchSandbox, benchDebugging]) await measure(b);
  await benchCli(c, runs, row, { want, log });
  const cold = row('cold_image_build', 'cold image build (from the image manifest, once)');
  cold.samples.push(img.manifest.buildSeconds);
  const result = summarize(rows, runs, accel);
  const md = markdownTable(rows, result);
  await writeFile(path.join(out, 'bench.md'), `${md}\n`);
  await writeFile(path.join(out, 'bench.json'), JSON.stringify(result, null, 2) + '\n');
  process.stdout.write(`${md}\n\n${path.join(out, 'bench.json')}\n`);
  return 0;
}
