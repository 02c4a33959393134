/**
 * Reading blobs without ever serving bad bytes as good: a full read hashes while streaming and
 * holds back its last chunk until the hash matches; a range read verifies the whole file first,
 * unless the same file (size, mtime, inode) already verified.
 */
import { createHash } from 'node:crypto';
import { open, type FileHandle } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { StrataError } from '../../core/errors.ts';
import type { BlobInfo, ByteRange } from '../contract.ts';
import { blobPath, errorCode } from './blob-files.ts';
import { findBlobRow } from './blob-rows.ts';
import type { SqliteContext } from './context.ts';
import { checkRange, corrupt } from '../blob-errors.ts';

/** Opens a blob for reading under the rules of `Store.getBlob`. */
export async function getBlob(
  ctx: SqliteContext,
  sha256: string,
  range?: ByteRange,
): Promise<{ info: BlobInfo; stream: Readable }> {
  const info = findBlobRow(ctx.database, sha256);
  if (info === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${sha256} not found`, { details: { sha256 } });
  const handle = await openBlobFile(ctx, info);
  try {
    if (range === undefined) return { info, stream: verifiedStream(ctx, handle, info) };
    const { start, end } = checkRange(range, info.size);
    const print = await fingerprint(handle);
    if (ctx.verified.get(sha256) !== print) {
      if (!(await hashMatches(handle, info))) {
        ctx.verified.delete(sha256);
        throw corrupt(sha256);
      }
      ctx.verified.set(sha256, print);
    }
    return { info, stream: handle.createReadStream({ start, end, autoClose: true }) };
  } catch (error) {
    await handle.close().catch(() => undefined);
    throw error;
  }
}

/** Reads the whole blob and reports whether it still hashes to its name. */
export async function verifyBlob(ctx: SqliteContext, sha256: string): Promise<boolean> {
  const info = findBlobRow(ctx.database, sha256);
  if (info === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${sha256} not found`, { details: { sha256 } });
  let handle: FileHandle;
  try {
    handle = await open(blobPath(ctx.dirs, sha256), 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return false;
    throw error;
  }
  try {
    const ok = await hashMatches(handle, info);
    if (ok) ctx.verified.set(sha256, await fingerprint(handle));
    else ctx.verified.delete(sha256);
    return ok;
  } finally {
    await handle.close();
  }
}

/** Opens the blob's file; a recorded blob whose file is gone counts as corrupt, not absent. */
async function openBlobFile(ctx: SqliteContext, info: BlobInfo): Promise<FileHandle> {
  try {
    return await open(blobPath(ctx.dirs, info.sha256), 'r');
  } catch (error) {
    if (errorCode(error) === 'ENOENT') throw corrupt(info.sha256, error);
    throw error;
  }
}

/** A stream of the whole blob that errors with BLOB_CORRUPT instead of delivering its last byte. */
function verifiedStream(ctx: SqliteContext, handle: FileHandle, info: BlobInfo): Readable {
  const file = handle.createReadStream({ autoClose: true });
  const stream = Readable.from(verifiedChunks(ctx, file, info), { objectMode: false });
  // A reader that gives up before the first read never starts the generator; close the file anyway.
  stream.once('close', () => file.destroy());
  return stream;
}

/** The file's chunks, the last one released only once the whole file hashed to its name. */
async function* verifiedChunks(ctx: SqliteContext, file: Readable, info: BlobInfo): AsyncGenerator<Buffer> {
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
    ctx.verified.delete(info.sha256);
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
