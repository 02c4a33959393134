/**
 * Serving a blob from a local file without ever serving bad bytes as good: a full read hashes
 * while streaming and holds back its last chunk until the hash matches; a range read verifies
 * the whole file first, unless the same file (size, mtime, inode) already verified. The embedded
 * store reads its blob files this way, and the NATS store its replica-local copies.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { BlobInfo, ByteRange } from './contract.ts';
import { checkRange, corrupt } from './blob-errors.ts';

/** sha256 → fingerprint of the file when its bytes last hashed correctly. */
export type VerifiedFiles = Map<string, string>;

/** A stream of the blob in `file` (or of `range` of it) under the rules of `Store.getBlob`; a missing file is corrupt. */
export async function readVerifiedFile(file: string, info: BlobInfo, verified: VerifiedFiles, range?: ByteRange): Promise<Readable> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw corrupt(info.sha256, error);
    throw error;
  }
  try {
    if (range === undefined) return verifiedStream(handle, info, verified);
    const { start, end } = checkRange(range, info.size);
    await verifyOnce(handle, info, verified);
    return handle.createReadStream({ start, end, autoClose: true });
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

/** Whether the file hashes to the blob's name (remembered when it does); a missing file is false. */
export async function verifyFile(file: string, info: BlobInfo, verified: VerifiedFiles): Promise<boolean> {
  let handle: FileHandle;
  try {
    handle = await open(file, 'r');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return false;
    throw error;
  }
  try {
    const ok = await hashMatches(handle, info);
    if (ok) verified.set(info.sha256, await fingerprint(handle));
    else verified.delete(info.sha256);
    return ok;
  } finally {
    await handle.close();
  }
}

/** Throws BLOB_CORRUPT unless the file verified before, unchanged, or verifies now. */
async function verifyOnce(handle: FileHandle, info: BlobInfo, verified: VerifiedFiles): Promise<void> {
  const print = await fingerprint(handle);
  if (verified.get(info.sha256) === print) return;
  if (!(await hashMatches(handle, info))) {
    verified.delete(info.sha256);
    throw corrupt(info.sha256);
  }
  verified.set(info.sha256, print);
}

/** A stream of the whole blob that errors with BLOB_CORRUPT instead of delivering its last byte. */
function verifiedStream(handle: FileHandle, info: BlobInfo, verified: VerifiedFiles): Readable {
  const file = handle.createReadStream({ autoClose: true });
  const stream = Readable.from(verifiedChunks(file as AsyncIterable<Buffer>, info, verified), { objectMode: false });
  // A reader that gives up before the first read never starts the generator; close the file anyway.
  stream.once('close', () => file.destroy());
  return stream;
}

/**
 * A blob's chunks, the last one released only once all of them hashed to its name (BLOB_CORRUPT
 * instead, forgetting an earlier verification). Any source: a file, or NATS object chunks.
 */
export async function* verifiedChunks<C extends Uint8Array>(chunks: AsyncIterable<C>, info: Pick<BlobInfo, 'sha256' | 'size'>, verified: VerifiedFiles): AsyncGenerator<C> {
  const hash = createHash('sha256');
  let size = 0;
  let held: C | undefined;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.byteLength;
    if (held !== undefined) yield held;
    held = chunk;
  }
  if (size !== info.size || hash.digest('hex') !== info.sha256) {
    verified.delete(info.sha256);
    throw corrupt(info.sha256);
  }
  if (held !== undefined) yield held;
}

/** Whether the file behind `handle` hashes to the blob's name and has its size. */
function hashMatches(handle: FileHandle, info: BlobInfo): Promise<boolean> {
  return chunksMatch(handle.createReadStream({ start: 0, autoClose: false, highWaterMark: 1 << 20 }) as AsyncIterable<Buffer>, info);
}

/** Whether chunks, all read, hash to the blob's name and add up to its size. */
export async function chunksMatch(chunks: AsyncIterable<Uint8Array>, info: Pick<BlobInfo, 'sha256' | 'size'>): Promise<boolean> {
  const hash = createHash('sha256');
  let size = 0;
  for await (const chunk of chunks) {
    hash.update(chunk);
    size += chunk.byteLength;
  }
  return size === info.size && hash.digest('hex') === info.sha256;
}

/** What identifies "the same bytes as last time" without reading them. */
async function fingerprint(handle: FileHandle): Promise<string> {
  const stats = await handle.stat();
  return `${stats.size}:${stats.mtimeMs}:${stats.ino}`;
}
