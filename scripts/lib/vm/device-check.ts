// A suite's devices asked of QEMU itself before anything boots (#25): each
// driver with `-device NAME,help`, whose listing names the properties it
// takes. An unknown device or property is bad input: QEMU's own words,
// the suite file, its line and its field, and exit 2.
import { dataError } from '../core/datafile.ts';
import type { KmodvmError } from '../core/errors.ts';
import { sh } from '../core/sh.ts';
import { type DeviceDecl, helpProps } from './devices.ts';
import { QEMU } from './vm.ts';

/** Properties every device takes besides its own listing. */
const GENERIC = new Set(['id', 'bus']);

/** What QEMU says of one driver: its properties, or its error. */
async function askQemu(driver: string): Promise<{ props: Set<string> } | { error: string }> {
  const r = await sh`${QEMU} -nodefaults -machine q35 -device ${`${driver},help`}`;
  const said = r.stderr.trim();
  if (r.exitCode !== 0 || said) return { error: said || `exited ${r.exitCode}` };
  return { props: helpProps(r.stdout) };
}

/** The first device of the list QEMU refuses, as a usage error naming where the suite wrote it; undefined when QEMU takes them all. */
export async function checkDevicesWithQemu(decls: readonly DeviceDecl[]): Promise<KmodvmError | undefined> {
  const asked = new Map<string, Promise<{ props: Set<string> } | { error: string }>>();
  for (const d of decls) {
    if (!asked.has(d.driver)) asked.set(d.driver, askQemu(d.driver));
    const a = await asked.get(d.driver)!;
    const w = d.where ?? { file: '(suite)', field: 'devices' };
    const hint = `QEMU's own list: ${QEMU} -device help, and a device's properties: ${QEMU} -device ${d.driver},help (docs/devices.md)`;
    if ('error' in a) return dataError(w.file, w.line, w.field, `QEMU does not take ${d.spec}: ${a.error}`, hint);
    const bad = d.props.map(([k]) => k).filter((k) => !GENERIC.has(k) && !a.props.has(k));
    if (bad.length) return dataError(w.file, w.line, w.field, `QEMU's ${d.driver} has no propert${bad.length > 1 ? 'ies' : 'y'} ${bad.join(', ')}`, hint);
  }
  return undefined;
}
