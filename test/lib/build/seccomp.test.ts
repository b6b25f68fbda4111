// The seccomp program, run by a small classic-BPF interpreter over the
// syscalls it must refuse and the ones a build needs; the real kernel runs
// it in sandbox.test.ts.
import t from 'tap';
import { ARCHES, filterInsns, type Insn, JEQ_K, JGE_K, LD_W_ABS, RET_K, seccompProgram } from '../../../scripts/lib/build/seccomp.ts';

function evaluate(insns: readonly Insn[], d: { nr: number; arch: number; arg0?: number }): number {
  let acc = 0;
  for (let pc = 0; pc < insns.length; pc++) {
    const [code, jt, jf, k] = insns[pc];
    if (code === LD_W_ABS) acc = k === 0 ? d.nr : k === 4 ? d.arch : k === 16 ? (d.arg0 ?? 0) : Number.NaN;
    else if (code === JEQ_K) pc += acc >>> 0 === k >>> 0 ? jt : jf;
    else if (code === JGE_K) pc += acc >>> 0 >= k >>> 0 ? jt : jf;
    else if (code === RET_K) return k >>> 0;
    else throw new Error(`opcode ${code}`);
  }
  throw new Error('ran off the end');
}

const ALLOW = 0x7fff0000;
const errno = (e: number): number => 0x00050000 | e;

for (const [name, a] of Object.entries(ARCHES)) {
  t.test(`${name}: unix sockets, io_uring, other ABIs refused; the rest allowed`, async (t) => {
    const p = filterInsns(a);
    const run = (nr: number, arg0?: number, arch = a.audit): number => evaluate(p, { nr, arch, arg0 });
    t.equal(run(a.socket, 1), errno(97), 'socket(AF_UNIX) → EAFNOSUPPORT');
    t.equal(run(a.socket, 2), ALLOW, 'socket(AF_INET) allowed (there is no network to reach)');
    t.equal(run(a.socket, 16), ALLOW, 'socket(AF_NETLINK) allowed');
    for (const nr of [425, 426, 427]) t.equal(run(nr), errno(38), `io_uring syscall ${nr} → ENOSYS`);
    t.equal(run(0x40000000 + a.socket, 1), errno(1), 'x32 ABI → EPERM');
    t.equal(run(a.socket, 1, 0x40000003), errno(1), 'another architecture (i386) → EPERM');
    for (const nr of [0, 1, 2, 3, 57, 59, 60, 231]) t.equal(run(nr), ALLOW, `syscall ${nr} allowed`);
  });
}

t.test('the program as bytes: 8 per instruction, little-endian; none on an architecture without a table', async (t) => {
  const b = seccompProgram('x64')!;
  const insns = filterInsns(ARCHES.x64);
  t.equal(b.length, insns.length * 8);
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  t.equal(v.getUint16(0, true), LD_W_ABS);
  t.equal(v.getUint32(12, true), ARCHES.x64.audit, "the arch check's constant");
  t.equal(seccompProgram('riscv64'), undefined);
});
