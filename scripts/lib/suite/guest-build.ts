// The guest build of a suite (--build guest, or a host build that failed
// under KVM): each module dir made in the uploaded suite root, in order,
// against the guest's own /lib/modules/<kver>/build, with the earlier dirs'
// Module.symvers as KBUILD_EXTRA_SYMBOLS; each replayed from kbuild's
// recorded commands when only .c/.h contents changed (guest-kbuild.ts).
// Then each app dir is made with the guest's compiler.
import path from 'node:path';
import { buildModuleInGuest, guestBuildPlan } from '../build/guest-kbuild.ts';
import { kdirArgs } from '../build/kdir-args.ts';
import type { Config } from '../core/config.ts';
import { tail } from '../core/proc.ts';
import type { SshSession } from '../guest/ssh.ts';
import { compilerDiagnostics, GUEST_WORK, runStep, type StepRecord, type StepSpec } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import { hostPaths, type Suite } from './load.ts';
import { inLoadOrder, loads, modulesFromOrder } from './modules-order.ts';
import type { LoadedModule } from './test-plan.ts';

export interface GuestBuildInput {
  c: Pick<Config, 'timeouts' | 'cpus'>;
  suite: Suite;
  session: SshSession;
  kver: string;
  records?: { dir: string; replay: boolean };
  log: (l: string) => void;
}

export interface GuestBuildResult {
  ok: boolean;
  checks: CheckResult[];
  records: StepRecord[];
  modules: LoadedModule[];
}

/** A failed guest build's check: the compiler's errors at the host's paths, as annotations too. */
function buildCheck(name: string, dir: string, rec: StepRecord, suite: Suite): CheckResult {
  const check: CheckResult = {
    name,
    ok: rec.ok,
    failure: rec.failure,
    durationMs: rec.result.durationMs,
    message: rec.ok ? (rec.message ?? 'in the guest') : `the ${name.startsWith('build-app') ? 'app' : 'module'} in ${dir} does not build (in the guest)`,
  };
  if (rec.ok) return check;
  const out = hostPaths(suite, `${rec.result.stdout}\n${rec.result.stderr}`, GUEST_WORK);
  const diags = compilerDiagnostics(out).filter((d) => d.severity !== 'warning');
  check.evidence = diags.length
    ? diags.map((d) => `${d.file}:${d.line}${d.col ? `:${d.col}` : ''}: ${d.severity}: ${d.message}`).join('\n')
    : `${rec.message}\n${tail(out, 25)}`;
  check.annotations = diags.map((d) => ({ file: d.file, line: d.line, col: d.col, message: `${d.severity}: ${d.message}` }));
  if (rec.failure === 'timeout') check.failure = 'timeout';
  return check;
}

/** make in the guest for one module dir, with the kernel tree under every usual name, the dirs before's symbols, and the suite's make arguments and target. */
const guestMakeSpec = (i: GuestBuildInput, m: Suite['modules'][number], name: string, symvers: readonly string[]): StepSpec => ({
  name,
  argv: [
    'make',
    `-j${i.c.cpus}`,
    '-C',
    `${GUEST_WORK}/${m.dir}`,
    ...kdirArgs(`/lib/modules/${i.kver}/build`),
    ...(symvers.length ? [`KBUILD_EXTRA_SYMBOLS=${symvers.join(' ')}`] : []),
    ...(m.make ?? []),
    ...(m.target ? [m.target] : []),
  ],
  timeoutMs: i.c.timeouts.build * 1000,
  failure: 'build',
  untrusted: true,
});

/** The modules the guest's make built: the shallowest modules.order in the dir or below it (lttng builds with M=$(PWD)/src, #29.9). */
async function guestModules(i: GuestBuildInput, gdir: string) {
  const t = { timeoutMs: i.c.timeouts.command * 1000 };
  const found = await i.session.exec(['find', gdir, '-maxdepth', '4', '-name', 'modules.order', '-type', 'f'], t);
  const file = found.stdout
    .split('\n')
    .filter(Boolean)
    .sort((a, b) => a.split('/').length - b.split('/').length || a.localeCompare(b))[0];
  const orderDir = path.dirname(file ?? `${gdir}/modules.order`);
  const order = await i.session.exec(['cat', `${orderDir}/modules.order`], t);
  // Its lines are relative to its own dir (M=); the .ko paths, to the module dir.
  const listed =
    order.exitCode === 0 ? modulesFromOrder(order.stdout, orderDir).map((bm) => ({ ...bm, ko: path.relative(gdir, path.join(orderDir, bm.ko)) })) : [];
  return { order, listed };
}

export async function guestBuildSuite(i: GuestBuildInput): Promise<GuestBuildResult> {
  const { c, suite, session } = i;
  const out: GuestBuildResult = { ok: true, checks: [], records: [], modules: [] };
  const symvers: string[] = [];
  const many = (n: number): boolean => n > 1;
  for (const m of suite.modules) {
    const gdir = `${GUEST_WORK}/${m.dir}`;
    const name = `build-module${many(suite.modules.length) ? `:${m.dir}` : ''}`;
    const spec = guestMakeSpec(i, m, name, symvers);
    i.log(`step ${name} (in the guest)`);
    const plan = i.records
      ? await guestBuildPlan(i.records.dir, m.abs, i.records.replay, gdir, `\0${symvers.join(' ')}\0${(m.make ?? []).join('\0')}\0${m.target ?? ''}`)
      : undefined;
    const rec = plan ? await buildModuleInGuest(session, spec, plan, i.log) : await runStep(session, spec);
    out.records.push(rec);
    out.checks.push(buildCheck(name, m.dir, rec, suite));
    if (!rec.ok) return { ...out, ok: false };
    const { order, listed } = await guestModules(i, gdir);
    if (!listed.length) {
      out.checks.push({
        name,
        ok: false,
        failure: 'build',
        durationMs: 0,
        message: `no modules.order in ${m.dir} or below it lists a module after make`,
        evidence: `${order.reason}\n${order.stderr}\nnext: does the Makefile build with obj-m, and pass M= a directory of this tree?`,
      });
      return { ...out, ok: false };
    }
    out.modules.push(
      ...inLoadOrder(
        listed.filter((bm) => loads(bm.name, m)),
        m,
      ).map((bm) => ({ name: bm.name, guestKo: `${gdir}/${bm.ko}`, params: m.params, ...(m.kunit ? { kunit: m.dir } : {}) })),
    );
    symvers.push(`${gdir}/Module.symvers`);
  }
  for (const a of suite.apps) {
    const name = `build-app${many(suite.apps.length) ? `:${a.dir}` : ''}`;
    i.log(`step ${name} (in the guest)`);
    const rec = await runStep(session, {
      name,
      argv: ['make', '-C', `${GUEST_WORK}/${a.dir}`],
      timeoutMs: c.timeouts.build * 1000,
      failure: 'build',
      untrusted: true,
    });
    out.records.push(rec);
    out.checks.push(buildCheck(name, a.dir, rec, suite));
    if (!rec.ok) return { ...out, ok: false };
  }
  return out;
}
