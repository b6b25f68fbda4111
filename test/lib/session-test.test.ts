// testOnSession's build decisions on a scripted session (no guest): which
// builds end up in the guest, and what a host build failure becomes.
import { mkdirSync, mkdtempSync, readFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import t from 'tap';
import { defaultConfig } from '../../scripts/lib/config.ts';
import type { HostBuild } from '../../scripts/lib/hostbuild.ts';
import { testOnSession } from '../../scripts/lib/session-test.ts';
import type { ExecResult, SshSession, UploadPart } from '../../scripts/lib/ssh.ts';
import { parseTranscript } from '../../scripts/lib/transcript.ts';

const root = path.join(import.meta.dirname, '../..');
const transcriptFile = path.join(root, 'test/expected/netlink.transcript');

/** A session that answers every command with exit 0 (the taint files with 0 and 12288) and records what it was asked. */
function scripted(): { session: SshSession; commands: string[]; uploads: string[][]; parts: UploadPart[][] } {
  const commands: string[] = [];
  const uploads: string[][] = [];
  const parts: UploadPart[][] = [];
  let taints = 0;
  const ok = (stdout = ''): ExecResult => ({ command: '', exitCode: 0, signal: undefined, timedOut: false, stdout, stderr: '', durationMs: 1, reason: 'exited 0' });
  const exec = async (argv: readonly string[]): Promise<ExecResult> => {
    commands.push(argv.join(' '));
    return ok(argv.includes('/proc/sys/kernel/tainted') ? (taints++ ? '12288\n' : '0\n') : '');
  };
  const fake = {
    exec,
    // steps run on kept shells; the answers are the same
    execKept: (argv: readonly string[]) => fake.exec(argv),
    warmShells: async () => undefined,
    warmUpload: () => undefined,
    uploadTrees: async (_base: string, ps: readonly UploadPart[]) => { uploads.push(ps.map((p) => `${p.sub}<-${p.localDir}`)); parts.push([...ps]); return []; },
  };
  return { session: fake as unknown as SshSession, commands, uploads, parts };
}

/** Records when each command starts and ends; the slow ones answer 50 ms late. */
function timeline(session: SshSession, slow: (name: string) => boolean): string[] {
  const events: string[] = [];
  const inner = session.exec.bind(session);
  (session as unknown as { exec: SshSession['exec'] }).exec = async (argv, o) => {
    const name = argv.join(' ');
    events.push(`start ${name}`);
    if (slow(name)) await new Promise((r) => setTimeout(r, 50));
    const r = await inner(argv, o);
    events.push(`end ${name}`);
    return r;
  };
  return events;
}

const failedHostBuild: HostBuild = { ok: false, durationMs: 5, output: 'gcc-12: fatal error: cannot execute cc1\n', evidence: 'make exited 2\ngcc-12: fatal error: cannot execute cc1' };
const runDir = (): string => { const d = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-st-')); mkdirSync(path.join(d, 'steps')); return d; };
const input = (session: SshSession, over: object) => ({
  c: defaultConfig({}, root), session, runDir: runDir(),
  moduleDir: path.join(root, 'kernel-module'), appDir: path.join(root, 'userapp'),
  transcript: parseTranscript(readFileSync(transcriptFile, 'utf8')), transcriptFile,
  serialTail: async () => '', log: () => undefined, ...over,
});

t.test('under TCG a failed host build is the verdict: build failure, nothing runs in the guest after it', async (t) => {
  const s = scripted();
  const r = await testOnSession(input(s.session, { hostBuild: Promise.resolve(failedHostBuild) }));
  const b = r.checks.find((c) => c.name === 'build-module')!;
  t.equal(b.ok, false);
  t.equal(b.failure, 'build');
  t.match(b.evidence, /cannot execute cc1[\s\S]*next: fix the code, or try --build guest/);
  t.same(s.uploads, [], 'nothing uploaded');
  t.notOk(s.commands.some((c) => c.startsWith('insmod')), 'nothing loaded');
});

t.test('under KVM a failed host build is retried in the guest, and says so', async (t) => {
  const s = scripted();
  const r = await testOnSession(input(s.session, { hostBuild: Promise.resolve(failedHostBuild), guestFallback: true }));
  const note = r.checks.find((c) => c.name === 'build-module-host')!;
  t.equal(note.ok, true);
  t.equal(note.message, 'failed on the host; built in the guest instead');
  t.match(note.evidence, /cannot execute cc1/, 'the host failure stays in the report');
  t.match(s.uploads[0][0], /^kernel-module<-.*\/kernel-module$/, 'the module sources, not a host build, are uploaded');
  t.ok(s.commands.includes('make -C /root/kmodvm/kernel-module'), 'the module is built in the guest');
  t.ok(s.commands.some((c) => c.startsWith('insmod /root/kmodvm/kernel-module/netlink_simple_intf.ko')), 'and loaded');
  t.ok(r.checks.find((c) => c.name === 'build-module')?.ok, 'the guest build is the build-module check');
});

t.test('both built on the host: no make in the guest, the binaries are uploaded', async (t) => {
  const s = scripted();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-hb-'));
  const built: HostBuild = { ok: true, durationMs: 1, output: '' };
  await testOnSession(input(s.session, { hostBuild: Promise.resolve(built), hostApp: Promise.resolve(built), hostBuildDir: dir, hostAppDir: dir }));
  t.notOk(s.commands.some((c) => c.startsWith('make')), 'no make in the guest');
  t.same(s.uploads[0], [`kernel-module<-${dir}`, `userapp<-${dir}`]);
});

t.test('the kernel log and the taint after the run are read at the same time, each with its own record', async (t) => {
  const s = scripted();
  // dmesg answers only after a tick, long after the taint read could have started
  const events = timeline(s.session, (name) => name === 'dmesg');
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-hb-'));
  const built: HostBuild = { ok: true, durationMs: 1, output: '' };
  const r = await testOnSession(input(s.session, { hostBuild: Promise.resolve(built), hostApp: Promise.resolve(built), hostBuildDir: dir, hostAppDir: dir }));
  const at = (e: string): number => events.indexOf(e);
  t.ok(at('start cat /proc/sys/kernel/tainted') >= 0);
  t.ok(events.lastIndexOf('start cat /proc/sys/kernel/tainted') < at('end dmesg'), 'taint-after started before dmesg-after ended');
  t.ok(at('start dmesg') > at('end rmmod netlink_simple_intf'), 'both after the unload');
  const names = r.checks.map((c) => c.name);
  t.ok(names.indexOf('dmesg-after') < names.indexOf('taint-after'), 'the report keeps the plan\'s order');
  t.ok(r.records.get('taint-after')?.ok);
  t.equal(r.checks.find((c) => c.name === 'taint')?.message, 'tainted 12288');
});

t.test('a host-built module goes to the guest as the build\'s guest copy, under the module\'s own name', async (t) => {
  const s = scripted();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-hb-'));
  const copy = path.join(dir, '.kmodvm-guest', 'netlink_simple_intf.ko');
  const mod: HostBuild = { ok: true, durationMs: 1, output: '', ko: path.join(dir, 'netlink_simple_intf.ko'), upload: copy };
  const app: HostBuild = { ok: true, durationMs: 1, output: '' };
  await testOnSession(input(s.session, { hostBuild: Promise.resolve(mod), hostApp: Promise.resolve(app), hostBuildDir: dir, hostAppDir: dir }));
  const m = s.parts[0].find((p) => p.sub === 'kernel-module')!;
  t.equal(m.localDir, path.dirname(copy), 'sent from the guest copy\'s directory');
  t.equal(m.skip?.('netlink_simple_intf.ko'), false, 'the module is sent');
  t.equal(m.skip?.('netlink_simple_intf.o'), true, 'nothing else is');
  t.ok(s.commands.includes('insmod /root/kmodvm/kernel-module/netlink_simple_intf.ko'), 'and loaded from the usual guest path');
});

t.test('on a kept VM the leftover unload and the taint read run at the same time', async (t) => {
  const s = scripted();
  const events = timeline(s.session, (name) => name.startsWith('sh -c rmmod'));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'kmodvm-hb-'));
  const built: HostBuild = { ok: true, durationMs: 1, output: '' };
  const r = await testOnSession(input(s.session, { hostBuild: Promise.resolve(built), hostApp: Promise.resolve(built), hostBuildDir: dir, hostAppDir: dir, reuse: true }));
  const unload = events.findIndex((e) => e.startsWith('end sh -c rmmod'));
  t.ok(unload > 0, 'the leftover is unloaded');
  t.ok(events.indexOf('start cat /proc/sys/kernel/tainted') < unload, 'the taint read started before the unload ended');
  t.ok(events.indexOf('start insmod /root/kmodvm/kernel-module/netlink_simple_intf.ko') > unload, 'the load waits for both');
  const names = r.checks.map((c) => c.name);
  t.ok(names.indexOf('unload-old') < names.indexOf('taint-before'), 'the report keeps the plan\'s order');
  t.equal(r.checks.find((c) => c.name === 'taint')?.ok, true);
});
