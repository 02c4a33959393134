/**
 * `putBlob`: the bytes stream into a fresh object (named per upload) and, at the same time, into
 * a local spool file, hashed and counted as they pass (maxBytes refuses the chunk that crosses
 * it, before it is stored). Once the hash is known and checked, `beforeCommit` re-reads the
 * spool (random access, as zip inspection needs), and only then does the blob become visible:
 * its ledger record, which names the object, is written with compare-and-set on its subject.
 * Until that record exists the object is just a staged upload that no read can reach; every
 * failure removes it at once, and a crash leaves it for `sweep`.
 */
import { mkdir, open, unlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError } from '../../core/errors.ts';
import type { BlobInfo, PutBlobOptions } from '../contract.ts';
import { blobInfo, readBlobRecord, type BlobRecord } from './blob-records.ts';
import { isWrongLastSequence, nowIso, storageError, toJson } from './codec.ts';
import type { NatsContext } from './context.ts';
import { appendLedger, ledgerSubject } from './ledger.ts';
import { newObjectName, objectInfo, removeObject } from './objects.ts';
import { stagedFile, UploadMeter, writeAll } from '../staging.ts';

/** Stores the bytes of `source` as a blob under the rules of `Store.putBlob`. */
export async function putBlob(ctx: NatsContext, source: AsyncIterable<Uint8Array>, options: PutBlobOptions = {}): Promise<BlobInfo> {
  const object = newObjectName();
  await mkdir(ctx.spoolDir, { recursive: true, mode: 0o700 });
  const spoolPath = join(ctx.spoolDir, `${object}.part`);
  let spool: FileHandle | undefined;
  try {
    spool = await open(spoolPath, 'wx', 0o600);
    const received = await receive(ctx, object, spool, source, options.maxBytes);
    await spool.close();
    spool = undefined;
    const { sha256, size } = received;
    if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
      throw new StrataError('HASH_MISMATCH', undefined, { details: { expected: options.expectedSha256, actual: sha256 } });
    }
    if (options.beforeCommit) await options.beforeCommit(stagedFile(spoolPath, sha256, size));
    const { info, keptOurs } = await commit(ctx, object, sha256, size);
    if (!keptOurs) await removeObject(ctx, object);
    return info;
  } catch (error) {
    // Usually gone already (the object store removes the chunks of a failed put); make sure.
    await removeObject(ctx, object).catch(() => undefined);
    throw storageError(error);
  } finally {
    await spool?.close().catch(() => undefined);
    await unlink(spoolPath).catch(() => undefined);
  }
}

/**
 * Feeds `source` to the object store while hashing, counting and spooling. The object store pulls
 * one chunk at a time, so a source that is too large is refused at the chunk that crosses the limit.
 * A failure of the source (or of the limit) is rethrown as itself; the object store has already
 * removed the chunks it stored.
 */
async function receive(
  ctx: NatsContext,
  object: string,
  spool: FileHandle,
  source: AsyncIterable<Uint8Array>,
  maxBytes: number | undefined,
): Promise<{ sha256: string; size: number }> {
  const meter = new UploadMeter(maxBytes);
  let failure: { error: unknown } | undefined;
  const iterator = source[Symbol.asyncIterator]();
  const body = new ReadableStream<Uint8Array>(
    {
      async pull(controller) {
        try {
          const next = await iterator.next();
          if (next.done) {
            controller.close();
            return;
          }
          const chunk = next.value;
          meter.take(chunk);
          await writeAll(spool, chunk);
          controller.enqueue(chunk);
        } catch (error) {
          failure = { error };
          controller.error(error);
        }
      },
      async cancel() {
        await iterator.return?.();
      },
    },
    { highWaterMark: 0 },
  );
  try {
    await ctx.objects.put({ name: object, options: { max_chunk_size: ctx.chunkSize } }, body);
  } catch (error) {
    if (failure) {
      await iterator.return?.().catch(() => undefined);
      throw failure.error;
    }
    throw error;
  }
  if (failure) throw failure.error;
  return meter.result();
}

/**
 * Makes the blob visible. Bytes already stored (record present, object intact) keep their object
 * and only refresh `uploadedAt`, which also makes a concurrent sweep's transaction fail; otherwise
 * the record is written to name our object (replacing a broken one). Compare-and-set on the
 * subject; a lost race decides again.
 */
async function commit(ctx: NatsContext, object: string, sha256: string, size: number): Promise<{ info: BlobInfo; keptOurs: boolean }> {
  const subject = ledgerSubject.blob(ctx, sha256);
  for (;;) {
    const { record, seq } = await readBlobRecord(ctx, sha256);
    const now = nowIso();
    const existing = record === undefined ? undefined : await objectInfo(ctx, record.object);
    const intact = record !== undefined && existing !== undefined && existing.size === size && record.size === size;
    const next: BlobRecord = intact
      ? { ...record, uploadedAt: now }
      : { sha256, size, createdAt: record?.createdAt ?? now, uploadedAt: now, object };
    try {
      await appendLedger(ctx, { subject, data: toJson(next), rollup: true, expectedSubjectSeq: seq });
    } catch (error) {
      if (isWrongLastSequence(error)) continue;
      throw error;
    }
    // A broken record's object (missing or truncated) is replaced by the fresh bytes: a re-upload repairs.
    if (!intact && record !== undefined) await removeObject(ctx, record.object).catch(() => undefined);
    return { info: blobInfo(next), keptOurs: !intact };
  }
}
