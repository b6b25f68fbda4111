// The one atomic write: write-file-atomic (npm's own) writes a temporary file
// beside the target, fsyncs it and renames it over, so a reader sees the old
// file or the new one, never half of one.

/** Writes data to file atomically; mode defaults to 0600 (caches may hold keys and paths). */
export async function writeAtomic(file: string, data: string | Buffer, o: { mode?: number } = {}): Promise<void> {
  // Loaded on the first write, not at start.
  const { default: writeFileAtomic } = await import('write-file-atomic');
  await writeFileAtomic(file, data, { mode: o.mode ?? 0o600 });
}

/** writeAtomic for JSON, pretty-printed with a final newline. */
export async function writeJsonAtomic(file: string, value: unknown, o: { mode?: number } = {}): Promise<void> {
  await writeAtomic(file, `${JSON.stringify(value, null, 2)}\n`, o);
}
