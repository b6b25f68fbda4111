// kmodvm image build|info|key|verify|prune|export FILE|import FILE (npm run
// vm:image): the cached guest image.

import type { Config } from '../../core/config.ts';
import { mib } from '../../core/disk.ts';
import { KmodvmError } from '../../core/errors.ts';
import type { Cli } from '../../core/flags.ts';
import { kmodvmCommand } from '../../core/invoked.ts';
import { preflight } from '../../host/preflight.ts';
import { exportImage, importImage } from '../../image/archive.ts';
import { buildImage, ensureImage } from '../../image/build.ts';
import { findImage, imageKey, verifyImage } from '../../image/image.ts';
import { applyPrune, pruneHint, prunePlan } from '../../loop/prune.ts';
import { log } from '../cli.ts';
import type { Invocation } from './invocation.ts';

async function build(config: Pick<Config, 'cacheDir' | 'kernel' | 'mirror' | 'recipe' | 'root' | 'verbose'>, own: Cli['own']): Promise<number> {
  await preflight(log);
  const onBuilt = () => pruneHint(config, log);
  const img = own.force ? await buildImage(config, log, { onBuilt, force: true }) : await ensureImage(config, log, { onBuilt });
  process.stdout.write(`${img.dir}\n`);
  return 0;
}

async function info(config: Pick<Config, 'cacheDir' | 'recipe' | 'root'>): Promise<number> {
  const img = await findImage(config);
  if (!img) {
    log(`no image for recipe ${imageKey(config).key} yet; ${kmodvmCommand('test')} builds it`);
    return 4;
  }
  const { packages, ...rest } = img.manifest;
  process.stdout.write(`${JSON.stringify({ dir: img.dir, ...rest, packageCount: Object.keys(packages).length }, null, 2)}\n`);
  return 0;
}

async function verify(config: Pick<Config, 'cacheDir' | 'recipe' | 'root'>): Promise<number> {
  const img = await findImage(config).catch((e: KmodvmError) => {
    log(e.message);
    return undefined;
  });
  const dir = img?.dir ?? `${config.cacheDir}/images/${imageKey(config).key}`;
  const bad = await verifyImage(dir);
  for (const b of bad) log(`verify: ${b}`);
  if (bad.length)
    throw new KmodvmError('image', `image ${dir} does not match what was written at its build`, {
      hint: `delete it and build again: ${kmodvmCommand('image', 'build --force')}`,
    });
  log(`verify: image ${dir}: every recorded file matches its sha256`);
  return 0;
}

async function prune(config: Pick<Config, 'cacheDir' | 'dryRun' | 'recipe' | 'root'>): Promise<number> {
  const plan = await prunePlan(config);
  for (const k of plan.keep) log(`keep ${k.path}: ${k.why}`);
  if (!plan.remove.length) {
    log('nothing to prune');
    return 0;
  }
  if (config.dryRun) {
    for (const r of plan.remove) log(`would remove ${r.path}: ${r.why}`);
    return 0;
  }
  log(`freed ${mib(await applyPrune(plan, log))}`);
  return 0;
}

async function archive(
  cmd: 'export' | 'import',
  config: Pick<Config, 'cacheDir' | 'kernel' | 'recipe' | 'root'>,
  file: string | undefined,
  own: Cli['own'],
): Promise<number> {
  if (!file) throw new KmodvmError('usage', `vm:image ${cmd} needs a FILE`, { hint: kmodvmCommand('image', `${cmd} kmodvm-image.tar.zst`) });
  if (cmd === 'export') await exportImage(config, file, log);
  else await importImage(config, file, log, { trust: typeof own.trust === 'string' ? own.trust : undefined });
  return 0;
}

export async function run(i: Invocation): Promise<number> {
  const { config, positionals, own } = i.parse();
  const [cmd = 'info', file] = positionals;
  if (cmd === 'key') {
    process.stdout.write(`${imageKey(config).key}\n`);
    return 0;
  }
  if (cmd === 'build') return build(config, own);
  if (cmd === 'info') return info(config);
  if (cmd === 'verify') return verify(config);
  if (cmd === 'prune') return prune(config);
  if (cmd === 'export' || cmd === 'import') return archive(cmd, config, file, own);
  throw new KmodvmError('usage', `unknown vm:image command ${JSON.stringify(cmd)}`, {
    hint: 'use build, info, key, verify, prune, export FILE or import FILE',
  });
}
