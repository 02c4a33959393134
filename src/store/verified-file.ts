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
  const stream = Readable.from(verifiedChunks(file, info, verified), { objectMode: false });
  // A reader that gives up before the first read never starts the generator; close the file anyway.
  stream.once('close', () => file.destroy());
  return stream;
}

/** The file's chunks, the last one released only once the whole file hashed to its name. */
async function* verifiedChunks(file: Readable, info: BlobInfo, verified: VerifiedFiles): AsyncGenerator<Buffer> {
  const hash = createHash('sha256');
  let size = 0;
  let held: Buffer | undefined;
  for await (const chunk of file as AsyncIterable<Buffer>) {
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
async function hashMatches(handle: FileHandle, info: BlobInfo): Promise<boolean> {
  const hash = createHash('sha256');
  let size = 0;
  const buffer = Buffer.allocUnsafe(1 << 20);
  for (;;) {
    const { bytesRead } = await handle.read(buffer, 0, buffer.byteLength, size);
    if (bytesRead === 0) break;
    hash.update(buffer.subarray(0, bytesRead));
    size += bytesRead;
  }
  return size === info.size && hash.digest('hex') === info.sha256;
}

/** What identifies "the same bytes as last time" without reading them. */
async function fingerprint(handle: FileHandle): Promise<string> {
  const stats = await handle.stat();
  return `${stats.size}:${stats.mtimeMs}:${stats.ino}`;
}
