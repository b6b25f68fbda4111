// A run's reports in its run directory: report.json, junit.xml, report.tap.
import { writeFile } from 'node:fs/promises';
import path from 'node:path';
import { toJUnit } from './junit.ts';
import type { RunReport } from './model.ts';
import { toTap } from './tap.ts';

export async function writeReports(r: RunReport): Promise<void> {
  await writeFile(path.join(r.runDir, 'report.json'), JSON.stringify(r, null, 2) + '\n');
  await writeFile(path.join(r.runDir, 'junit.xml'), toJUnit(r));
  await writeFile(path.join(r.runDir, 'report.tap'), toTap(r));
}
