// The build sandbox's seccomp filter: a classic BPF program, as libseccomp's
// seccomp_export_bpf writes it, that bubblewrap loads with --seccomp FD. It
// refuses what a read-only mount cannot stop: creating a unix socket (the
// way to a host service whose socket path is visible: a guest's QMP socket,
// an SSH agent, D-Bus, docker.sock), io_uring (whose ops create sockets
// past seccomp), the x32 ABI and any other architecture's syscalls (other
// syscall numbers). socket()'s first argument is a plain integer, so the
// filter can read it; connect()'s address is behind a pointer, which it
// cannot. A build needs none of these: make's jobserver uses pipes and
// FIFOs, and glibc falls back when nscd's or systemd's sockets are refused.

/** struct sock_filter: u16 code, u8 jt, u8 jf, u32 k. */
export type Insn = [code: number, jt: number, jf: number, k: number];

export const LD_W_ABS = 0x20; // BPF_LD | BPF_W | BPF_ABS
export const JEQ_K = 0x15; // BPF_JMP | BPF_JEQ | BPF_K
export const JGE_K = 0x35; // BPF_JMP | BPF_JGE | BPF_K
export const RET_K = 0x06; // BPF_RET | BPF_K

const RET_ALLOW = 0x7fff0000;
const retErrno = (errno: number): number => 0x00050000 | errno;
const EPERM = 1;
const ENOSYS = 38;
const EAFNOSUPPORT = 97;
const AF_UNIX = 1;

// struct seccomp_data: int nr; u32 arch; u64 instruction_pointer; u64 args[6] (args[0]'s low word at 16, little-endian).
const OFF_NR = 0;
const OFF_ARCH = 4;
const OFF_ARG0_LO = 16;

interface ArchTable {
  audit: number;
  socket: number;
  /** The first number that is not this ABI's own (x86_64's x32 syscalls have bit 30 set). */
  nrLimit: number;
}

/** The syscall numbers, from the kernel's own tables (arch/x86/entry/syscalls/syscall_64.tbl, include/uapi/asm-generic/unistd.h). */
export const ARCHES: Record<string, ArchTable> = {
  x64: { audit: 0xc000003e, socket: 41, nrLimit: 0x40000000 },
  arm64: { audit: 0xc00000b7, socket: 198, nrLimit: 0x40000000 },
};
// io_uring_setup, io_uring_enter and io_uring_register have one number on every architecture.
const IO_URING = [425, 426, 427];

/** The filter's instructions for one architecture. */
export function filterInsns(a: ArchTable): Insn[] {
  const p: Insn[] = [];
  const denyAt = new Map<string, number>();
  const jumps: { at: number; to: string; branch: 'jt' | 'jf' }[] = [];
  const jmp = (code: number, k: number, to: string, branch: 'jt' | 'jf' = 'jt'): void => {
    jumps.push({ at: p.length, to, branch });
    p.push([code, 0, 0, k]);
  };
  p.push([LD_W_ABS, 0, 0, OFF_ARCH]);
  jmp(JEQ_K, a.audit, 'eperm', 'jf');
  p.push([LD_W_ABS, 0, 0, OFF_NR]);
  jmp(JGE_K, a.nrLimit, 'eperm');
  for (const nr of IO_URING) jmp(JEQ_K, nr, 'enosys');
  jmp(JEQ_K, a.socket, 'socket');
  p.push([RET_K, 0, 0, RET_ALLOW]);
  denyAt.set('socket', p.length);
  p.push([LD_W_ABS, 0, 0, OFF_ARG0_LO]);
  jmp(JEQ_K, AF_UNIX, 'eafnosupport');
  p.push([RET_K, 0, 0, RET_ALLOW]);
  for (const [label, errno] of [
    ['eperm', EPERM],
    ['enosys', ENOSYS],
    ['eafnosupport', EAFNOSUPPORT],
  ] as const) {
    denyAt.set(label, p.length);
    p.push([RET_K, 0, 0, retErrno(errno)]);
  }
  for (const j of jumps) {
    const off = denyAt.get(j.to)! - j.at - 1;
    p[j.at][j.branch === 'jt' ? 1 : 2] = off;
  }
  return p;
}

/** The program as bytes (native little-endian sock_filter), or undefined on an architecture without a table here. */
export function seccompProgram(arch: string = process.arch): Uint8Array | undefined {
  const a = ARCHES[arch];
  if (!a) return undefined;
  const insns = filterInsns(a);
  const b = Buffer.alloc(insns.length * 8);
  insns.forEach(([code, jt, jf, k], i) => {
    b.writeUInt16LE(code, i * 8);
    b.writeUInt8(jt, i * 8 + 2);
    b.writeUInt8(jf, i * 8 + 3);
    b.writeUInt32LE(k >>> 0, i * 8 + 4);
  });
  return new Uint8Array(b);
}
