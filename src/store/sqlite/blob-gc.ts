/**
 * Removing blobs: `deleteBlob` on request and `sweep` for garbage. Rows are deleted in a
 * transaction that also checks no version references them; the files are unlinked synchronously
 * right after the commit, so no upload of the same bytes can interleave between the two.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { unlinkSync } from 'node:fs';
import { join } from 'node:path';
import { StrataError } from '../../core/errors.ts';
import type { SweepReport } from '../contract.ts';
import { blobPath, errorCode } from './blob-files.ts';
import { versionsUsingBlob } from './blob-rows.ts';
import type { SqliteContext } from './context.ts';
import { inTransaction } from './database.ts';
import { text } from './rows.ts';

/** Deletes one blob under the rules of `Store.deleteBlob`. */
export function deleteBlob(ctx: SqliteContext, sha256: string): boolean {
  const deleted = inTransaction(ctx.database, () => {
    const versions = versionsUsingBlob(ctx.database, sha256);
    if (versions.length > 0) {
      throw new StrataError('IN_USE', `blob ${sha256} is named by ${versions.join(', ')}`, { details: { sha256, versions } });
    }
    return Number(ctx.database.sql('DELETE FROM blobs WHERE sha256 = ?').run(sha256).changes) > 0;
  });
  if (deleted) removeBlobFile(ctx, sha256);
  return deleted;
}

/** Garbage-collects unreferenced blobs and abandoned uploads older than `graceMs`. */
export async function sweep(ctx: SqliteContext, options: { graceMs: number; now?: Date }): Promise<SweepReport> {
  const nowMs = (options.now ?? new Date()).getTime();
  const cutoffMs = nowMs - options.graceMs;
  const cutoff = new Date(cutoffMs).toISOString();
  const blobsDeleted = inTransaction(ctx.database, () => {
    const doomed = ctx.database
      .sql(
        `SELECT sha256 FROM blobs
         WHERE uploaded_at < ? AND NOT EXISTS (SELECT 1 FROM versions WHERE versions.blob = blobs.sha256)
         ORDER BY sha256`,
      )
      .all(cutoff)
      .map((row) => text(row, 'sha256'));
    const remove = ctx.database.sql('DELETE FROM blobs WHERE sha256 = ?');
    for (const sha256 of doomed) remove.run(sha256);
    return doomed;
  });
  for (const sha256 of blobsDeleted) removeBlobFile(ctx, sha256);
  const uploadsRemoved = await removeAbandonedUploads(ctx.dirs.uploads, cutoffMs);
  return { blobsDeleted, uploadsRemoved };
}

/** Unlinks a blob's file, tolerating one already gone; synchronous on purpose (see file TSDoc). */
function removeBlobFile(ctx: SqliteContext, sha256: string): void {
  ctx.verified.delete(sha256);
  try {
    unlinkSync(blobPath(ctx.dirs, sha256));
  } catch (error) {
    if (errorCode(error) !== 'ENOENT') throw error;
  }
}

/** Removes `.part` files not written to since `cutoffMs`; returns how many. */
async function removeAbandonedUploads(uploadsDir: string, cutoffMs: number): Promise<number> {
  let removed = 0;
  for (const entry of await readdir(uploadsDir)) {
    if (!entry.endsWith('.part')) continue;
    const path = join(uploadsDir, entry);
    try {
      if ((await stat(path)).mtimeMs >= cutoffMs) continue;
      await unlink(path);
      removed += 1;
    } catch (error) {
      // The upload finished (renamed) or failed (cleaned up) while we looked: nothing to remove.
      if (errorCode(error) !== 'ENOENT') throw error;
    }
  }
  return removed;
}
