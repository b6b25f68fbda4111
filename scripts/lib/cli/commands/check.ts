// kmodvm check [--suite FILE] [--strict]: the static checks alone, without a
// VM (suite/static-check.ts, #27.3): each finding a line at its file and
// line, then the summary. Exit 0, or 16 under --strict or static: strict
// when anything was found; a check that cannot run has its own class.
import { EXIT_CODES } from '../../core/errors.ts';
import { preflight } from '../../host/preflight.ts';
import { ensureImage } from '../../image/build.ts';
import { buildModeFor } from '../../loop/build-start.ts';
import { resolveSuite } from '../../suite/resolve.ts';
import { startStatic } from '../../suite/static-check.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

export async function run(i: Invocation): Promise<number> {
  const a = i.parse();
  const c = a.config;
  const rs = await resolveSuite(c);
  await preflight(log);
  const img = await ensureImage(c, log, {});
  const { kdir } = buildModeFor(c, img, false);
  const mode = a.own.strict ? 'strict' : (rs.suite.static ?? 'warn');
  log(`check: ${rs.suite.file}: W=1, sparse and checkpatch (${mode})`);
  const r = await startStatic(c, rs, { kdir, mode, log });
  if (r.evidence) process.stdout.write(`${r.evidence}\n`);
  log(`check: ${r.ok ? 'ok' : `FAIL (${r.failure})`}: ${r.message} (${(r.durationMs / 1000).toFixed(1)} s)`);
  return r.ok ? 0 : EXIT_CODES[r.failure ?? 'internal'];
}
