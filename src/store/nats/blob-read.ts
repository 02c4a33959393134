/**
 * Reading blobs without ever serving bad bytes as good. With a replica-local cache
 * (`blob-cache.ts`, what the server uses) a blob is copied out of NATS once, checked, and served
 * from the copy like an embedded store's file. Without one, a full read hashes while streaming and
 * holds back its last chunk until the hash matches; a range read verifies the whole object first,
 * unless the same stored object (fingerprint: name, metadata revision, last chunk sequence)
 * already verified. Object-store chunks cannot be addressed by offset, so a range is read from
 * the object's start, skipping the bytes before it.
 */
import { Readable } from 'node:stream';
import type { ObjectInfo } from '@nats-io/obj';
import { StrataError } from '../../core/errors.ts';
import type { BlobInfo, ByteRange } from '../contract.ts';
import { blobInfo, readBlobRecord, type BlobRecord } from './blob-records.ts';
import type { NatsContext } from './context.ts';
import { objectChunks, objectFingerprint, objectInfo } from './objects.ts';
import { checkRange, corrupt } from '../blob-errors.ts';
import { chunksMatch, readVerifiedFile, verifiedChunks } from '../verified-file.ts';

/** Opens a blob for reading under the rules of `Store.getBlob`. */
export async function getBlob(ctx: NatsContext, sha256: string, range?: ByteRange): Promise<{ info: BlobInfo; stream: Readable }> {
  const { record } = await readBlobRecord(ctx, sha256);
  if (record === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${sha256} not found`, { details: { sha256 } });
  const info = blobInfo(record);
  // A recorded blob whose object is gone counts as corrupt, not absent.
  const object = await objectInfo(ctx, record.object);
  if (object === undefined) throw corrupt(sha256);
  if (ctx.blobCache) {
    const file = await ctx.blobCache.file(ctx, record, object, await objectFingerprint(ctx, record.object, object));
    return { info, stream: await readVerifiedFile(file, info, ctx.blobCache.verified, range) };
  }
  if (range === undefined) return { info, stream: Readable.from(verifiedChunks(objectChunks(ctx, object), record, ctx.verified), { objectMode: false }) };
  const { start, end } = checkRange(range, record.size);
  const print = await objectFingerprint(ctx, record.object, object);
  if (ctx.verified.get(sha256) !== print) {
    if (!(await hashMatches(ctx, record, object))) {
      ctx.verified.delete(sha256);
      throw corrupt(sha256);
    }
    ctx.verified.set(sha256, print);
  }
  return { info, stream: Readable.from(rangeChunks(ctx, object, start, end), { objectMode: false }) };
}

/** Reads the whole blob and reports whether it still hashes to its name. */
export async function verifyBlob(ctx: NatsContext, sha256: string): Promise<boolean> {
  const { record } = await readBlobRecord(ctx, sha256);
  if (record === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${sha256} not found`, { details: { sha256 } });
  const object = await objectInfo(ctx, record.object);
  if (object === undefined) return false;
  const print = await objectFingerprint(ctx, record.object, object);
  const ok = await hashMatches(ctx, record, object);
  if (ok) ctx.verified.set(sha256, print);
  else ctx.verified.delete(sha256);
  return ok;
}

/** Bytes `start`..`end` (inclusive) of the object. */
async function* rangeChunks(ctx: NatsContext, object: ObjectInfo, start: number, end: number): AsyncGenerator<Uint8Array> {
  let offset = 0;
  for await (const chunk of objectChunks(ctx, object)) {
    const from = Math.max(start - offset, 0);
    const to = Math.min(end + 1 - offset, chunk.byteLength);
    if (from < to) yield chunk.subarray(from, to);
    offset += chunk.byteLength;
    if (offset > end) return;
  }
}

/** Whether the object hashes to the blob's name and has its size. */
function hashMatches(ctx: NatsContext, record: BlobRecord, object: ObjectInfo): Promise<boolean> {
  return chunksMatch(objectChunks(ctx, object), record);
}
