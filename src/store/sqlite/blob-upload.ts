/**
 * `putBlob`: stream into a private `.part` file while hashing, fsync, check, let the caller
 * inspect it, then rename into the content-addressed tree and only then record the row. A crash
 * at any step leaves at most a `.part` file (swept later) or an unrecorded blob file (re-used by
 * the next upload of the same bytes, or swept), never a visible partial blob.
 */
import { mkdir, open, rename, stat, unlink, type FileHandle } from 'node:fs/promises';
import { StrataError } from '../../core/errors.ts';
import { syncDirectory } from '../../lib/atomic-file.ts';
import type { BlobInfo, PutBlobOptions } from '../contract.ts';
import { blobPath, blobShardDir, errorCode, newUploadPath, storageError } from './blob-files.ts';
import { findBlobRow } from './blob-rows.ts';
import type { SqliteContext } from './context.ts';
import { inTransaction } from './database.ts';
import { nowIso } from './rows.ts';
import { stagedFile, UploadMeter, writeAll } from '../staging.ts';

/** Stores the bytes of `source` as a blob under the rules of `Store.putBlob`. */
export async function putBlob(
  ctx: SqliteContext,
  source: AsyncIterable<Uint8Array>,
  options: PutBlobOptions = {},
): Promise<BlobInfo> {
  const partPath = newUploadPath(ctx.dirs);
  let handle: FileHandle | undefined;
  try {
    handle = await open(partPath, 'wx', 0o600);
    const { sha256, size } = await receive(handle, source, options.maxBytes);
    await handle.sync();
    await handle.close();
    handle = undefined;
    if (options.expectedSha256 !== undefined && options.expectedSha256 !== sha256) {
      throw new StrataError('HASH_MISMATCH', undefined, { details: { expected: options.expectedSha256, actual: sha256 } });
    }
    if (options.beforeCommit) await options.beforeCommit(stagedFile(partPath, sha256, size));
    if ((await storedFileSize(ctx, sha256)) === size && reuseExisting(ctx, sha256)) {
      await unlink(partPath);
      const existing = findBlobRow(ctx.database, sha256);
      if (existing) return existing;
    }
    // Not stored, or its file is missing or truncated: the fresh bytes are known good, so they
    // take its place and a re-upload repairs the blob.
    return await commit(ctx, partPath, sha256, size);
  } catch (error) {
    await handle?.close().catch(() => undefined);
    await unlink(partPath).catch(() => undefined);
    throw storageError(error);
  }
}

/** Writes every chunk to `handle`, hashing and counting as it goes. */
async function receive(
  handle: FileHandle,
  source: AsyncIterable<Uint8Array>,
  maxBytes: number | undefined,
): Promise<{ sha256: string; size: number }> {
  const meter = new UploadMeter(maxBytes);
  for await (const chunk of source) {
    // Refused before the chunk is written, so an oversized upload never costs more disk than the limit.
    meter.take(chunk);
    await writeAll(handle, chunk);
  }
  return meter.result();
}

/** The size of the file a blob would live in, or undefined when there is none. */
async function storedFileSize(ctx: SqliteContext, sha256: string): Promise<number | undefined> {
  try {
    return (await stat(blobPath(ctx.dirs, sha256))).size;
  } catch (error) {
    if (errorCode(error) === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * True when the blob is already recorded; refreshes its upload time in the same transaction so
 * a concurrent sweep cannot delete it between this check and the caller's `addVersion`.
 */
function reuseExisting(ctx: SqliteContext, sha256: string): boolean {
  return inTransaction(ctx.database, () => {
    const result = ctx.database.sql('UPDATE blobs SET uploaded_at = ? WHERE sha256 = ?').run(nowIso(), sha256);
    return Number(result.changes) > 0;
  });
}

/** Moves the staged file into place durably, then makes it visible by recording its row. */
async function commit(ctx: SqliteContext, partPath: string, sha256: string, size: number): Promise<BlobInfo> {
  const shardDir = blobShardDir(ctx.dirs, sha256);
  const created = await mkdir(shardDir, { recursive: true, mode: 0o700 });
  // A file left by a crash between rename and insert holds the same bytes; replacing it is safe.
  await rename(partPath, blobPath(ctx.dirs, sha256));
  await syncDirectory(shardDir);
  if (created !== undefined) await syncDirectory(ctx.dirs.blobs);
  const at = nowIso();
  return inTransaction(ctx.database, () => {
    ctx.database
      .sql(
        `INSERT INTO blobs (sha256, size, created_at, uploaded_at) VALUES (?, ?, ?, ?)
         ON CONFLICT (sha256) DO UPDATE SET uploaded_at = excluded.uploaded_at`,
      )
      .run(sha256, size, at, at);
    const info = findBlobRow(ctx.database, sha256);
    if (info === undefined) throw new Error(`blob ${sha256} vanished inside its own transaction`);
    return info;
  });
}
