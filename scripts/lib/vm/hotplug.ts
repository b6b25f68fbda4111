// Hot-plugging a suite's devices into a running guest over QMP (#25):
// device_add into one of kmodvm's root ports, device_del and QEMU's
// DEVICE_DELETED once the guest let it go, and the device's PCI address as
// the guest sees it (the root port's secondary bus, from query-pci). Each
// call connects, does its work against a deadline and disconnects: nothing
// else holds the QMP socket.
import { closeSync, constants, ftruncateSync, openSync } from 'node:fs';
import type { DevicePlan } from './devices.ts';
import { Qmp, QmpError } from './qmp.ts';

/** A sparse scratch drive, made anew (never through a link) with the owner's mode only. */
export function makeScratchSync(s: { file: string; bytes: number }): void {
  const fd = openSync(s.file, constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC | constants.O_NOFOLLOW, 0o600);
  try {
    ftruncateSync(fd, s.bytes);
  } finally {
    closeSync(fd);
  }
}

async function withQmp<T>(socket: string, deadlineMs: number, f: (q: Qmp) => Promise<T>): Promise<T> {
  const q = await Qmp.connect(socket, { deadlineMs: Math.min(deadlineMs, 5000), alive: () => true });
  try {
    return await f(q);
  } finally {
    q.close();
  }
}

interface PciDevice {
  qdev_id?: string;
  pci_bridge?: { bus?: { secondary?: number }; devices?: PciDevice[] };
}

/** The guest's address of the device in a root port: domain 0, the port's secondary bus, slot 0, function 0. Pure. */
export function portAddress(queryPci: readonly { devices: PciDevice[] }[], port: string): string | undefined {
  const walk = (ds: readonly PciDevice[]): PciDevice | undefined => {
    for (const d of ds) {
      if (d.qdev_id === port) return d;
      const inner = d.pci_bridge?.devices && walk(d.pci_bridge.devices);
      if (inner) return inner;
    }
    return undefined;
  };
  const bus = walk(queryPci.flatMap((b) => b.devices))?.pci_bridge?.bus?.secondary;
  return bus === undefined ? undefined : `0000:${bus.toString(16).padStart(2, '0')}:00.0`;
}

/** The ids of the devices the guest has now (-device and device_add ones). */
export async function presentIds(socket: string, deadlineMs: number): Promise<Set<string>> {
  return withQmp(socket, deadlineMs, async (q) => {
    const list = await q.execute<{ name: string; type: string }[]>('qom-list', { path: '/machine/peripheral' });
    return new Set(list.filter((p) => p.type.startsWith('child<')).map((p) => p.name));
  });
}

/** Adds a hot device (its backend first; nothing when it is present already) and returns the address the guest will see it at. */
export async function plugDevice(socket: string, plan: DevicePlan, deadlineMs: number, o: { present?: boolean } = {}): Promise<{ address: string }> {
  if (!plan.hot || !plan.port) throw new QmpError(`${plan.decl.id} is not hot-pluggable`);
  if (plan.scratch && !o.present) makeScratchSync(plan.scratch);
  return withQmp(socket, deadlineMs, async (q) => {
    if (!o.present) for (const call of plan.plug) await q.execute(call.execute, call.arguments);
    const address = portAddress(await q.execute('query-pci'), plan.port!);
    if (!address) throw new QmpError(`query-pci shows no bus behind ${plan.port}`);
    return { address };
  });
}

/** Removes a hot device: device_del, then QEMU's DEVICE_DELETED (the guest let it go), then its backend. */
export async function unplugDevice(socket: string, plan: DevicePlan, deadlineMs: number): Promise<void> {
  await withQmp(socket, deadlineMs, async (q) => {
    await q.execute('device_del', { id: plan.decl.id });
    await q.waitEvent('DEVICE_DELETED', (d) => d.device === plan.decl.id, deadlineMs);
    for (const call of plan.unplugBackend) await q.execute(call.execute, call.arguments);
  });
}
