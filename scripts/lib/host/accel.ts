// accel auto: KVM only where /dev/kvm is read-write and the CPU shows vmx or
// svm; otherwise TCG, with a one-line note saying why.
import { accessSync, constants, readFileSync } from 'node:fs';
import type { Accel } from '../core/config.ts';
/** The accelerator a VM runs with. */
export type RunAccel = 'kvm' | 'tcg';

export interface HostFacts {
  kvmReadWrite: boolean;
  virtFlags: boolean;
}

export function hostFacts(): HostFacts {
  let kvmReadWrite = false;
  try {
    accessSync('/dev/kvm', constants.R_OK | constants.W_OK);
    kvmReadWrite = true;
  } catch {
    /* absent or not ours */
  }
  let virtFlags = false;
  try {
    virtFlags = /^flags\s*:.*\b(vmx|svm)\b/m.test(readFileSync('/proc/cpuinfo', 'utf8'));
  } catch {
    /* not Linux */
  }
  return { kvmReadWrite, virtFlags };
}

export function chooseAccel(requested: Accel, h: HostFacts): { accel: RunAccel; note?: string } {
  if (requested === 'kvm' || requested === 'tcg') return { accel: requested };
  if (h.kvmReadWrite && h.virtFlags) return { accel: 'kvm' };
  const why = !h.kvmReadWrite ? '/dev/kvm is missing or not read-write for this user' : 'the CPU flags show neither vmx nor svm';
  return { accel: 'tcg', note: `accel: TCG (software emulation) because ${why}; expect about 5 s to boot, 1–2 s to resume a saved guest` };
}
