// Whether a process still runs (signal 0: no signal is sent). EPERM means it
// runs under another user. 0 is never a process of ours (kill(0) is the group).
export function pidAlive(pid: number): boolean {
  if (!pid) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}
