// The short forms of a suite's devices, and the drivers it may not name,
// from qemu/devices.json: data, checked with its schema (vm/devices.ts)
// when first read; an error names the file, the line and the field.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultRoot } from '../core/config.ts';
import { parseData } from '../core/datafile.ts';
import { type DeviceForms, deviceFormsSchema } from './devices.ts';

const read = new Map<string, { forms: DeviceForms; refused: string[] }>();

export function deviceFormsFile(root: string): string {
  return path.join(root, 'qemu', 'devices.json');
}

function load(root: string): { forms: DeviceForms; refused: string[] } {
  const file = deviceFormsFile(root);
  let data = read.get(file);
  if (!data) {
    const v = parseData(readFileSync(file, 'utf8'), file, deviceFormsSchema, "qemu/devices.json is kmodvm's own: restore it from the package").value;
    data = { forms: v.forms, refused: v.refused.patterns };
    read.set(file, data);
  }
  return data;
}

/** The short forms kmodvm knows, from this checkout's (or package's) qemu/devices.json, read once. */
export function loadDeviceForms(root = defaultRoot()): DeviceForms {
  return load(root).forms;
}

/** The driver patterns a suite may not name: devices that reach the host itself. */
export function refusedDrivers(root = defaultRoot()): string[] {
  return load(root).refused;
}
