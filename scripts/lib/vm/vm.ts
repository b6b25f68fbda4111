// VM lifecycle: start QEMU, wait for SSH against a deadline while watching
// that QEMU is alive, and kill it on every way out (exit, error, Ctrl-C).

import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import net from 'node:net';
import { execa, type ResultPromise } from 'execa';
import { readFrom } from '../core/disk.ts';
import { KmodvmError } from '../core/errors.ts';
import { shellJoin, tail } from '../core/proc.ts';
import { onSignalCleanup } from '../core/signals.ts';
import { waitUntil } from '../core/wait.ts';
import { HostKeyMismatch, SshSession } from '../guest/ssh.ts';
import { makeScratchSync } from './hotplug.ts';
import { buildQemuArgs, type VmSpec } from './qemu-args.ts';

export const QEMU = 'qemu-system-x86_64';
/** What qemu/guest/usr/sbin/kmodvm-init prints once sshd listens. */
export const SSHD_READY_MARKER = 'kmodvm-init: sshd-started';

/** A free TCP port on 127.0.0.1, chosen by the kernel. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.unref();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as net.AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

export interface Exit {
  code: number | undefined;
  signal: string | undefined;
  stderr: string;
}

const live = new Set<Vm>();
let reaperInstalled = false;

/** Kills every VM still running when the process exits or is interrupted. */
function installReaper(): void {
  if (reaperInstalled) return;
  reaperInstalled = true;
  process.on('exit', () => {
    for (const vm of live) vm.killNow();
  });
  onSignalCleanup((sig) => {
    for (const vm of live) vm.killNow();
    if (live.size) process.stderr.write(`\n${sig}: QEMU killed\n`);
    live.clear();
  });
}

/** util-linux's setpriv, on every Debian and Ubuntu. */
export const SETPRIV = '/usr/bin/setpriv';

/**
 * A QEMU that dies with kmodvm even when kmodvm is SIGKILLed (nothing of ours
 * runs then to kill it): the kernel sends it SIGKILL when its parent goes
 * (setpriv --pdeathsig, kept across the exec into QEMU). Not for a detached
 * VM (vm:up), which outlives the command that started it.
 */
export function diesWithUs(cmd: string, args: readonly string[], have = existsSync(SETPRIV)): [string, string[]] {
  return have ? [SETPRIV, ['--pdeathsig', 'KILL', '--', cmd, ...args]] : [cmd, [...args]];
}

export class Vm {
  readonly args: string[];
  private child: ResultPromise | undefined;
  private exitInfo: Exit | undefined;
  private exited: Promise<Exit> | undefined;
  private stderrBuf = '';
  private stderrFile: string | undefined;

  constructor(readonly spec: VmSpec) {
    this.args = buildQemuArgs(spec);
  }

  commandLine(): string {
    return shellJoin([QEMU, ...this.args]);
  }

  get alive(): boolean {
    return this.child !== undefined && this.exitInfo === undefined;
  }

  get exit(): Exit | undefined {
    return this.exitInfo;
  }

  /**
   * Starts QEMU. A detached VM (vm:up) outlives this process once release()
   * is called; until then it is killed on Ctrl-C like any other.
   */
  start(o: { detached?: { stderrFile: string } } = {}): void {
    installReaper();
    // The cold devices' scratch drives, made before QEMU opens them (vm/devices.ts).
    for (const f of this.spec.devices?.scratch ?? []) makeScratchSync(f);
    // A resumed VM reads its migration stream from an inherited descriptor (-incoming fd:N).
    const incoming = this.spec.incoming;
    if (incoming && this.spec.incomingFd !== 3) throw new Error('an incoming migration stream is passed as fd 3');
    const fd = incoming ? openSync(incoming, 'r') : undefined;
    // execa hands a number to spawn as that descriptor; its types name only the string values for fds past 2.
    const extra = fd === undefined ? [] : [fd as unknown as 'inherit'];
    // A detached QEMU writes stderr to a file: a pipe would break when we exit.
    const [cmd, args] = o.detached ? [QEMU, this.args] : diesWithUs(QEMU, this.args);
    const child = execa(cmd, args, {
      reject: false,
      stdio: ['ignore', 'ignore', o.detached ? { file: o.detached.stderrFile } : 'pipe', ...extra],
      cleanup: !o.detached,
      detached: Boolean(o.detached),
    });
    if (fd !== undefined) closeSync(fd);
    this.stderrFile = o.detached?.stderrFile;
    this.child = child;
    live.add(this);
    child.stderr?.on('data', (d: Buffer) => {
      this.stderrBuf += d.toString();
    });
    this.exited = child.then((r) => {
      live.delete(this);
      this.exitInfo = { code: r.exitCode, signal: r.signal, stderr: this.stderrFile ? readFileSync(this.stderrFile, 'utf8') : this.stderrBuf };
      return this.exitInfo;
    });
  }

  get pid(): number | undefined {
    return this.child?.pid;
  }

  /** Lets a detached QEMU live on after this process exits. */
  release(): void {
    live.delete(this);
    this.child?.unref();
  }

  /** Resolves when QEMU has exited. */
  waitExit(): Promise<Exit> {
    if (!this.exited) throw new Error('VM not started');
    return this.exited;
  }

  async serialTail(n = 40): Promise<string> {
    return tail(await readFile(this.spec.serialLog, 'utf8').catch(() => ''), n);
  }

  async deathEvidence(): Promise<string> {
    const e = this.exitInfo;
    return [
      `QEMU ${e?.signal ? `killed by ${e.signal}` : `exited ${e?.code}`}`,
      e?.stderr.trim() ? `stderr:\n${tail(e.stderr, 15)}` : '',
      `serial console (${this.spec.serialLog}), last lines:\n${await this.serialTail(30)}`,
    ]
      .filter(Boolean)
      .join('\n');
  }

  /** Waits until the guest prints marker on the serial console, reading only what the log gained, with QEMU alive on every round. */
  async waitForSerial(marker: string, deadlineMs: number): Promise<void> {
    let at = 0;
    let carry = '';
    const seen = async (): Promise<boolean> => {
      const more = await readFrom(this.spec.serialLog, at);
      at += Buffer.byteLength(more);
      const text = carry + more;
      carry = text.slice(-marker.length);
      return text.includes(marker);
    };
    const w = await waitUntil(seen, { deadlineMs, intervalMs: 20, alive: () => this.alive });
    if (w.end === 'ready') return;
    if (w.end === 'dead') {
      await this.waitExit();
      throw new KmodvmError('boot', `QEMU exited before the guest printed "${marker}"`, { evidence: await this.deathEvidence(), hint: await this.deathHint() });
    }
    throw new KmodvmError('boot', `the guest did not print "${marker}" within ${Math.round(deadlineMs / 1000)} s`, {
      evidence: `serial console (${this.spec.serialLog}), last lines:\n${await this.serialTail(30)}`,
      hint: 'raise --boot-timeout on a slow host, or read the serial log for a hang',
    });
  }

  /**
   * Waits until a login succeeds or the deadline passes, checking first, on
   * every round, that QEMU is alive: a dead QEMU fails at once with its
   * stderr and the serial tail. With a readyMarker, SSH is tried only once
   * the guest has printed it on the serial console: slirp accepts the host's
   * TCP connection before the guest listens, and the SYN it then sends on is
   * retried on TCP's back-off (1 s, 2 s, 4 s...), which once cost 3 s a boot.
   * Only a completed handshake with the pinned host key counts as ready.
   */
  async waitForSsh(o: { privateKey: string; hostPublicKey: string; deadlineMs: number; pollMs?: number; readyMarker?: string }): Promise<SshSession> {
    const deadline = Date.now() + o.deadlineMs;
    if (o.readyMarker) await this.waitForSerial(o.readyMarker, o.deadlineMs);
    let lastErr = 'no attempt yet';
    const attempt = async (): Promise<SshSession | undefined> => {
      const left = deadline - Date.now();
      try {
        return await Promise.race([
          SshSession.connect({
            port: this.spec.sshPort,
            privateKey: o.privateKey,
            hostPublicKey: o.hostPublicKey,
            readyTimeoutMs: Math.max(1000, Math.min(left, 20_000)),
          }),
          this.waitExit().then(() => {
            throw new Error('QEMU exited');
          }),
        ]);
      } catch (e) {
        if (e instanceof HostKeyMismatch) {
          throw new KmodvmError('boot', `${e.message}: refusing to connect`, {
            hint: 'another process may own the port, or the image changed under us; rebuild the image',
          });
        }
        lastErr = (e as Error).message;
        return undefined;
      }
    };
    const w = await waitUntil(attempt, { deadlineMs: Math.max(0, deadline - Date.now()), intervalMs: o.pollMs ?? 100, alive: () => this.alive });
    if (w.end === 'ready') return w.value;
    if (w.end === 'dead') {
      await this.waitExit();
      throw new KmodvmError('boot', 'QEMU exited before SSH was ready', { evidence: await this.deathEvidence(), hint: await this.deathHint() });
    }
    throw new KmodvmError('boot', `SSH was not ready within ${Math.round(o.deadlineMs / 1000)} s (last: ${lastErr})`, {
      evidence: `serial console (${this.spec.serialLog}), last lines:\n${await this.serialTail(30)}`,
      hint: 'raise --boot-timeout on a slow host, or read the serial log for a hang',
    });
  }

  private async deathHint(): Promise<string> {
    return /panic/i.test(await this.serialTail(60)) ? 'the guest kernel panicked during boot: see the serial log' : 'read the QEMU error above';
  }

  /** Kills QEMU (the disk is a -snapshot: nothing to save) and waits for it. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child?.kill('SIGKILL');
    await this.waitExit();
  }

  killNow(): void {
    if (this.alive) this.child?.kill('SIGKILL');
  }
}

/** QEMU's own complaint about a port that is taken. */
export function isPortInUse(stderr: string): boolean {
  return /Could not set up host forwarding rule|Address already in use/i.test(stderr);
}
