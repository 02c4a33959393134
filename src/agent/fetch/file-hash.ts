/** Hashing files on disk by streaming them, and telling "the same file as last time" cheaply. */
import { createHash, type Hash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';

/** Feeds the first `length` bytes of `file` (all of it when omitted) into `hash`; returns the byte count. */
export async function hashFileInto(hash: Hash, file: string, length?: number, signal?: AbortSignal): Promise<number> {
  if (length === 0) return 0;
  const stream = createReadStream(file, {
    ...(length === undefined ? {} : { end: length - 1 }),
    ...(signal === undefined ? {} : { signal }),
    highWaterMark: 1 << 20,
  });
  let bytes = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.byteLength;
  }
  return bytes;
}

/** The sha256 (hex) and size of a whole file. */
export async function hashFile(file: string, signal?: AbortSignal): Promise<{ sha256: string; size: number }> {
  const hash = createHash('sha256');
  const size = await hashFileInto(hash, file, undefined, signal);
  return { sha256: hash.digest('hex'), size };
}

/**
 * What identifies "the same bytes as when last verified" without reading them: size, mtime and
 * inode. Undefined when the file does not exist.
 */
export async function fileFingerprint(file: string): Promise<string | undefined> {
  try {
    const stats = await stat(file);
    return `${stats.size}:${stats.mtimeMs}:${stats.ino}`;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
