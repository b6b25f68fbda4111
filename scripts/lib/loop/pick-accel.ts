import type { Config } from '../core/config.ts';
import { chooseAccel, hostFacts } from '../host/accel.ts';
import { memoFile, readMemo } from '../host/kvm-probe.ts';

/** accel auto, with what this host taught us before: a KVM that hangs guests is not tried again. */
export async function pickAccel(
  c: Pick<Config, 'accel' | 'cacheDir'>,
  facts = hostFacts(),
): Promise<{ accel: 'kvm' | 'tcg'; note?: string; probeKvm: boolean }> {
  const chosen = chooseAccel(c.accel, facts);
  if (c.accel !== 'auto' || chosen.accel !== 'kvm') return { ...chosen, probeKvm: false };
  const memo = await readMemo(c);
  if (memo && !memo.kvmWorks)
    return { accel: 'tcg', note: `accel: TCG, because KVM hung a guest on this host before (${memoFile(c)}; delete it to probe again)`, probeKvm: false };
  return { accel: 'kvm', probeKvm: !memo };
}
