// The suite's hot devices in its guest (#25): plugged into kmodvm's root
// ports once the guest is up (the suite's) or before a test (the test's),
// each waited for until the guest's PCI bus shows it, and unplugged after
// the test that named it. A check (the lifecycle's hot-unplug) unplugs and
// plugs them again through the same object. Plugging is the VM's business:
// a failure here is a boot-class failure (exit 5), not the module's.
import type { Timeouts } from '../core/config.ts';
import { KmodvmError } from '../core/errors.ts';
import { type Guest, runStep, type StepRecord, type StepSpec } from '../guest/steps.ts';
import type { CheckResult } from '../verdict/model.ts';
import type { DevicePlan } from '../vm/devices.ts';
import { plugDevice, presentIds, unplugDevice } from '../vm/hotplug.ts';

const ms = (s: number): number => Math.round(s * 1000);

/** Waits in the guest, against a deadline, until the PCI device at address is there (or, gone: is no longer). */
export const pciWaitStep = (id: string, address: string, present: boolean, t: Timeouts): StepSpec => ({
  name: `${present ? 'plug' : 'unplug'} ${id}`,
  argv: [
    'sh',
    '-c',
    // A readiness check with its own deadline (the step has a timeout too): ACPI hotplug takes the guest a moment.
    // biome-ignore lint/suspicious/noTemplateCurlyInString: the shell's own ${x##*/}, not a template
    'a=/sys/bus/pci/devices/$1; n=0; while { [ "$2" = 1 ] && [ ! -e "$a" ]; } || { [ "$2" = 0 ] && [ -e "$a" ]; }; do n=$((n+1)); [ "$n" -ge "$3" ] && { echo "the guest has ${2#1}no PCI device $1 after the deadline" >&2; exit 1; }; sleep 0.02; done; echo "$1"',
    'sh',
    address,
    present ? '1' : '0',
    String(Math.max(1, Math.floor((t.command * 1000) / 20))),
  ],
  timeoutMs: ms(t.command) + 5000,
  failure: 'boot',
});

const hint =
  "an instance started before the suite named devices has no root ports for them: kmodvm down, then kmodvm up from the suite's directory (docs/devices.md)";

/** The hot devices of one guest: which are in, at which guest address, and the steps that change that. */
export class GuestDevices {
  private readonly at = new Map<string, string>();

  constructor(
    private readonly guest: Guest,
    private readonly plans: readonly DevicePlan[],
    private readonly t: Timeouts,
    private readonly record: (r: StepRecord) => Promise<void>,
  ) {}

  /** The plugged hot devices: id → the guest's PCI address. */
  plugged(): ReadonlyMap<string, string> {
    return this.at;
  }

  plan(id: string): DevicePlan | undefined {
    return this.plans.find((p) => p.decl.id === id);
  }

  private socket(): string {
    if (!this.guest.qmpSocket) throw new KmodvmError('boot', 'this guest has no QMP socket to plug devices through', { hint });
    return this.guest.qmpSocket;
  }

  /** Plugs these hot devices (those the guest does not have already: a kept instance), each waited for in the guest. */
  async plug(ids: readonly string[]): Promise<CheckResult[]> {
    const out: CheckResult[] = [];
    const want = ids.map((id) => this.plan(id)).filter((p): p is DevicePlan => Boolean(p?.hot));
    if (!want.length) return out;
    const there = await presentIds(this.socket(), ms(this.t.command)).catch(() => new Set<string>());
    for (const p of want) {
      const t0 = Date.now();
      const r = await this.plugOne(p, there.has(p.decl.id));
      out.push({ ...r, durationMs: Date.now() - t0 });
      if (!r.ok) break;
    }
    return out;
  }

  private async plugOne(p: DevicePlan, present: boolean): Promise<Omit<CheckResult, 'durationMs'>> {
    const name = `plug ${p.decl.id}`;
    const added = await plugDevice(this.socket(), p, ms(this.t.command), { present }).catch((e: Error) => e);
    if (added instanceof Error)
      return { name, ok: false, failure: 'boot', message: `QEMU did not add ${p.decl.spec}: ${added.message}`, evidence: `next: ${hint}` };
    const w = await runStep(this.guest.session, pciWaitStep(p.decl.id, added.address, true, this.t));
    await this.record(w);
    if (!w.ok) return { name, ok: false, failure: 'boot', message: w.message, evidence: w.result.stderr.trim() };
    this.at.set(p.decl.id, added.address);
    return { name, ok: true, message: `${p.decl.spec} at ${added.address}${present ? ' (already in)' : ''}` };
  }

  /** Unplugs one hot device: QEMU's DEVICE_DELETED means the guest let it go. */
  async unplug(id: string): Promise<CheckResult> {
    const name = `unplug ${id}`;
    const p = this.plan(id);
    const t0 = Date.now();
    if (!p?.hot) return { name, ok: false, failure: 'usage', durationMs: 0, message: `${id} is not a hot-plugged device of this suite` };
    const e = await unplugDevice(this.socket(), p, ms(this.t.command)).catch((x: Error) => x);
    const durationMs = Date.now() - t0;
    if (e)
      return {
        name,
        ok: false,
        failure: 'app',
        durationMs,
        message: `the guest did not let ${id} go: ${e.message}`,
        evidence: 'a driver whose remove() hangs or never returns keeps the device',
      };
    this.at.delete(id);
    return { name, ok: true, durationMs, message: p.decl.spec };
  }
}
