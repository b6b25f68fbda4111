// The short forms of a suite's devices, qemu/devices.json: data, checked
// with its schema (vm/devices.ts) when first read; an error names the file,
// the line and the field.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { defaultRoot } from '../core/config.ts';
import { parseData } from '../core/datafile.ts';
import { type DeviceForms, deviceFormsSchema } from './devices.ts';

const read = new Map<string, DeviceForms>();

export function deviceFormsFile(root: string): string {
  return path.join(root, 'qemu', 'devices.json');
}

/** The short forms kmodvm knows, from this checkout's (or package's) qemu/devices.json, read once. */
export function loadDeviceForms(root = defaultRoot()): DeviceForms {
  const file = deviceFormsFile(root);
  let forms = read.get(file);
  if (!forms) {
    forms = parseData(readFileSync(file, 'utf8'), file, deviceFormsSchema, "qemu/devices.json is kmodvm's own: restore it from the package").value.forms;
    read.set(file, forms);
  }
  return forms;
}
