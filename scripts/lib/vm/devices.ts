// A suite's devices (#25), pure: each `-device` spec parsed, matched with its
// short form (qemu/devices.json) and planned as either QEMU arguments at
// boot (cold) or QMP commands into the running guest (hot). PCI devices of a
// short form are hot: they go into root ports of kmodvm's, after the guest
// is up, so one saved guest serves every device set. USB devices, their
// controllers and any spec kmodvm does not know are cold: the saved guest is
// keyed by them (VmSpec.devices.key). docs/devices.md.
import path from 'node:path';
import { z } from 'zod';
import type { DeviceDecl } from '../core/device-decl.ts';

export type { DeviceDecl };

const backend = z.enum(['drive', 'netdev', 'memdev', 'canbus', 'chardev']);

export const deviceFormsSchema = z.strictObject({
  $comment: z.string().optional(),
  refused: z.strictObject({ $comment: z.string().optional(), patterns: z.array(z.string().min(1)) }),
  forms: z.record(
    z.string().regex(/^[a-z0-9][\w-]*$/),
    z.strictObject({
      bus: z.enum(['pci', 'usb']),
      backend: backend.optional(),
      set: z.record(z.string(), z.string()).optional(),
      controller: z.literal('usb').optional(),
      about: z.string().min(1),
    }),
  ),
});
export type DeviceForms = z.output<typeof deviceFormsSchema>['forms'];

/** Whether a driver name is one the suite may not name (qemu/devices.json refused: a trailing * is a prefix). Pure. */
export const refusedDriver = (driver: string, patterns: readonly string[]): boolean =>
  patterns.some((p) => (p.endsWith('*') ? driver.startsWith(p.slice(0, -1)) : driver === p));
export type DeviceForm = DeviceForms[string];

export interface QmpCall {
  execute: string;
  arguments: Record<string, unknown>;
}

export interface DevicePlan {
  decl: DeviceDecl;
  form?: DeviceForm;
  hot: boolean;
  /** Hot: the root port it goes into. */
  port?: string;
  /** Hot: what adds it, its backend first; device_add last. */
  plug: QmpCall[];
  /** Hot: what removes its backend once QEMU said DEVICE_DELETED. */
  unplugBackend: QmpCall[];
  /** A sparse scratch drive made before it is added. */
  scratch?: { file: string; bytes: number };
}

export interface DeviceSet {
  plans: DevicePlan[];
  /** The cold devices' QEMU arguments, root ports and backends among them. */
  args: string[];
  /** What the saved guest is keyed by: the cold specs and the number of ports, never a path. */
  key: string[];
  /** Whether the guest has kmodvm's device-request port (kmodvm-device, suite/device-channel.ts): with any hot device. */
  channel: boolean;
}

export const SCRATCH_BYTES = 64 * 2 ** 20;
export const CANBUS_ID = 'kmodvm-canbus';
const USB_BUS_ID = 'kmodvm-usb';
/** kmodvm's virtio-serial port for the guest's kmodvm-device requests, and its chardev (qemu-args.ts gives its socket). */
export const CHANNEL_CHARDEV = 'kmodvm-devchan';
export const CHANNEL_PORT = 'org.kmodvm.device';
const channelArgs = (): string[] => [
  '-device',
  'virtio-serial-pci,id=kmodvm-vser',
  '-device',
  `virtserialport,bus=kmodvm-vser.0,chardev=${CHANNEL_CHARDEV},name=${CHANNEL_PORT}`,
];

/** Splits a -device spec at its commas (QEMU writes a literal comma twice); undefined when it is not driver[,key=value]*. */
export function parseDeviceSpec(spec: string): { driver: string; props: [string, string][] } | string {
  const parts: string[] = [];
  let cur = '';
  for (let i = 0; i < spec.length; i++) {
    if (spec[i] !== ',') cur += spec[i];
    else if (spec[i + 1] === ',') {
      cur += ',';
      i++;
    } else {
      parts.push(cur);
      cur = '';
    }
  }
  parts.push(cur);
  const [driver, ...rest] = parts;
  if (!/^[A-Za-z0-9][\w.-]*$/.test(driver)) return `"${driver}" is not a QEMU device name`;
  const props: [string, string][] = [];
  for (const p of rest) {
    const eq = p.indexOf('=');
    if (eq <= 0) return `"${p}" is not key=value`;
    props.push([p.slice(0, eq), p.slice(eq + 1)]);
  }
  return { driver, props };
}

/** A device id as QEMU takes it, and not one of kmodvm's own. */
export const ID_RE = /^[A-Za-z][\w.-]{0,31}$/;

/** The declaration of one spec, or why it is not one. */
export function declOf(spec: string): DeviceDecl | string {
  const p = parseDeviceSpec(spec);
  if (typeof p === 'string') return p;
  const id = p.props.find(([k]) => k === 'id')?.[1];
  if (id === undefined) return 'every device needs an id (edu,id=edu0): tests, lifecycle checks and kmodvm-device name it';
  if (!ID_RE.test(id) || id.startsWith('kmodvm')) return `id "${id}" must be a letter and up to 31 letters, digits or _.-, and not start with kmodvm`;
  // The suite is someone else's code: no property names a host file for QEMU to read (romfile=/etc/shadow would
  // put it in guest memory), nor one of kmodvm's own backends (net0 is the SSH forward's).
  for (const [k, v] of p.props) {
    if (v.includes('/') || (k === 'romfile' && v !== '')) return `${k}=${v}: a device may not name a host file (docs/devices.md)`;
    if (v === 'net0' || (k !== 'id' && v.startsWith('kmodvm'))) return `${k}=${v}: that is one of kmodvm's own backends`;
  }
  return { spec, driver: p.driver, id, props: p.props };
}

const opt = (v: string): string => v.replace(/,/g, ',,');
const propsArg = (props: readonly [string, string][]): string => props.map(([k, v]) => `,${k}=${opt(v)}`).join('');
const fill = (v: string, id: string): string => v.replace(/\{id\}/g, id).replace(/\{canbus\}/g, CANBUS_ID);

/** A hot device is a PCI short form that names no bus of its own and is no USB controller that USB devices hang on. */
function isHot(d: DeviceDecl, form: DeviceForm | undefined, usbDevices: boolean): boolean {
  if (form?.bus !== 'pci' || d.props.some(([k]) => k === 'bus')) return false;
  return !(form.controller === 'usb' && usbDevices);
}

/** The backend of a device: its QEMU arguments (cold), its QMP add and remove (hot), the property that names it. */
function backendOf(kind: DeviceForm['backend'], id: string, dir: string) {
  const file = path.join(dir, `device-${id}.img`);
  switch (kind) {
    case 'drive': {
      const node = `kmodvm-${id}-file`;
      return {
        prop: ['drive', node] as [string, string],
        args: ['-blockdev', `driver=file,filename=${opt(file)},node-name=${node}`],
        add: [{ execute: 'blockdev-add', arguments: { driver: 'file', filename: file, 'node-name': node } }],
        del: [{ execute: 'blockdev-del', arguments: { 'node-name': node } }],
        scratch: { file, bytes: SCRATCH_BYTES },
      };
    }
    case 'netdev': {
      const nid = `kmodvm-${id}-net`;
      return {
        prop: ['netdev', nid] as [string, string],
        args: ['-netdev', `user,id=${nid},restrict=on`],
        add: [{ execute: 'netdev_add', arguments: { type: 'user', id: nid, restrict: true } }],
        del: [{ execute: 'netdev_del', arguments: { id: nid } }],
      };
    }
    case 'memdev': {
      const mid = `kmodvm-${id}-mem`;
      return {
        prop: ['memdev', mid] as [string, string],
        args: ['-object', `memory-backend-ram,id=${mid},size=1M`],
        add: [{ execute: 'object-add', arguments: { 'qom-type': 'memory-backend-ram', id: mid, size: 2 ** 20 } }],
        del: [{ execute: 'object-del', arguments: { id: mid } }],
      };
    }
    case 'chardev': {
      const cid = `kmodvm-${id}-chr`;
      return {
        prop: ['chardev', cid] as [string, string],
        args: ['-chardev', `null,id=${cid}`],
        add: [{ execute: 'chardev-add', arguments: { id: cid, backend: { type: 'null', data: {} } } }],
        del: [{ execute: 'chardev-remove', arguments: { id: cid } }],
      };
    }
    default:
      // canbus: one bus for the suite, made at boot (the form's set names it); none: nothing.
      return { args: [] as string[], add: [] as QmpCall[], del: [] as QmpCall[] };
  }
}

/** Root ports for n hot devices, in fours, so that a suite with one more device shares the saved guest. */
export const portCount = (hot: number): number => (hot === 0 ? 0 : Math.ceil(hot / 4) * 4);
export const portId = (n: number): string => `kmodvm-port${n}`;

export function rootPortArgs(n: number): string[] {
  return Array.from({ length: n }, (_, i) => ['-device', `pcie-root-port,id=${portId(i)},chassis=${i + 1},slot=${i + 1},bus=pcie.0`]).flat();
}

/**
 * The plan of a suite's devices (the suite's and every test's, in order):
 * the hot ones as QMP commands, the cold ones as arguments. dir holds the
 * scratch drives.
 */
export function planDevices(decls: readonly DeviceDecl[], forms: DeviceForms, dir: string): DeviceSet {
  const formOf = (d: DeviceDecl): DeviceForm | undefined => (Object.hasOwn(forms, d.driver) ? forms[d.driver] : undefined);
  const usbDevices = decls.some((d) => formOf(d)?.bus === 'usb');
  const controller = decls.find((d) => formOf(d)?.controller === 'usb' && !d.props.some(([k]) => k === 'bus'));
  const args: string[] = [];
  const key: string[] = [];
  const plans: DevicePlan[] = [];
  let hot = 0;
  if (usbDevices && !controller) {
    args.push('-device', `qemu-xhci,id=${USB_BUS_ID}`);
    key.push(`qemu-xhci,id=${USB_BUS_ID}`);
  }
  if (decls.some((d) => formOf(d)?.backend === 'canbus')) {
    args.push('-object', `can-bus,id=${CANBUS_ID}`);
    key.push(`can-bus,id=${CANBUS_ID}`);
  }
  // Controllers first: a cold USB device needs its bus to exist when QEMU reads its -device.
  const ordered = [...decls].sort((a, b) => Number(Boolean(formOf(b)?.controller)) - Number(Boolean(formOf(a)?.controller)));
  for (const d of ordered) {
    const form = formOf(d);
    const be = backendOf(form?.backend, d.id, dir);
    const own = new Set(d.props.map(([k]) => k));
    const extra: [string, string][] = [
      ...('prop' in be && be.prop ? [be.prop] : []),
      ...Object.entries(form?.set ?? {})
        .filter(([k]) => !own.has(k))
        .map(([k, v]): [string, string] => [k, fill(v, d.id)]),
    ];
    const scratch = 'scratch' in be ? be.scratch : undefined;
    if (isHot(d, form, usbDevices)) {
      const port = portId(hot++);
      const props = Object.fromEntries([...d.props, ...extra, ['bus', port]]);
      const device = { execute: 'device_add', arguments: { driver: d.driver, ...props } };
      plans.push({ decl: d, form, hot: true, port, plug: [...be.add, device], unplugBackend: be.del, scratch });
      continue;
    }
    const bus: [string, string][] = form?.bus === 'usb' && !own.has('bus') ? [['bus', `${controller?.id ?? USB_BUS_ID}.0`]] : [];
    args.push(...be.args, '-device', `${d.spec}${propsArg([...extra, ...bus])}`);
    key.push(d.spec);
    plans.push({ decl: d, form, hot: false, plug: [], unplugBackend: [], scratch });
  }
  const ports = portCount(hot);
  if (ports) key.push(`ports=${ports}`, 'channel');
  return { plans, args: [...rootPortArgs(ports), ...(ports ? channelArgs() : []), ...args], key, channel: ports > 0 };
}

/** The property names a `-device NAME,help` listing gives (QEMU 7.2: "  addr=<int32>  - …"). */
export function helpProps(text: string): Set<string> {
  return new Set([...text.matchAll(/^\s+([\w.-]+)=</gm)].map((m) => m[1]));
}
