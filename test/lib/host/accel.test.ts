import t from 'tap';
import { chooseAccel } from '../../../scripts/lib/host/accel.ts';

t.test('auto picks KVM only with a read-write /dev/kvm and vmx/svm', async (t) => {
  t.same(chooseAccel('auto', { kvmReadWrite: true, virtFlags: true }), { accel: 'kvm' });
  const noDev = chooseAccel('auto', { kvmReadWrite: false, virtFlags: true });
  t.equal(noDev.accel, 'tcg');
  t.match(noDev.note, /\/dev\/kvm is missing or not read-write/);
  const noFlags = chooseAccel('auto', { kvmReadWrite: true, virtFlags: false });
  t.equal(noFlags.accel, 'tcg');
  t.match(noFlags.note, /neither vmx nor svm/);
});

t.test('--accel kvm|tcg forces either', async (t) => {
  t.same(chooseAccel('kvm', { kvmReadWrite: false, virtFlags: false }), { accel: 'kvm' });
  t.same(chooseAccel('tcg', { kvmReadWrite: true, virtFlags: true }), { accel: 'tcg' });
});
