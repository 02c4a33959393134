/**
 * Removing blobs: `deleteBlob` on request and `sweep` for garbage. Deciding that a blob is
 * unreferenced and deleting its record is one ledger transaction (a concurrent addVersion or
 * re-upload moves the ledger and makes it start over); the object is removed after the record,
 * and since objects are named per upload, a new upload of the same bytes never loses its object.
 * Sweep also removes what crashed or abandoned uploads left: objects no record names, chunks no
 * object names, and spool files, each once untouched for longer than the grace period.
 */
import { readdir, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { StrataError } from '../../core/errors.ts';
import type { SweepReport } from '../contract.ts';
import { allBlobRecords, readBlobRecord, type BlobRecord } from './blob-records.ts';
import { isWrongLastSequence, toJson } from './codec.ts';
import type { NatsContext } from './context.ts';
import { appendLedger, ledgerSubject, transact } from './ledger.ts';
import { objectStream, removeObject } from './objects.ts';
import { getLast, lastSeq } from './stream-reads.ts';
import { liveVersions } from './versions.ts';

/** Deletes one blob under the rules of `Store.deleteBlob`. */
export async function deleteBlob(ctx: NatsContext, sha256: string): Promise<boolean> {
  const deleted = await transact(ctx, async () => {
    const [{ record }, versions] = await Promise.all([readBlobRecord(ctx, sha256), liveVersions(ctx)]);
    if (record === undefined) return { result: undefined };
    const users = versions.filter((v) => v.version.blob === sha256).map((v) => `${v.version.component}:${v.version.version}`);
    if (users.length > 0) throw new StrataError('IN_USE', `blob ${sha256} is named by ${users.join(', ')}`, { details: { sha256, versions: users } });
    return { write: tombstone(ctx, record), done: (seq: number) => ({ record, seq }) };
  });
  if (deleted === undefined) return false;
  await cleanUpAfterDelete(ctx, deleted.record, deleted.seq);
  return true;
}

/** Garbage-collects unreferenced blobs and abandoned uploads older than `graceMs`. */
export async function sweep(ctx: NatsContext, options: { graceMs: number; now?: Date }): Promise<SweepReport> {
  const cutoffMs = (options.now ?? new Date()).getTime() - options.graceMs;
  const deleted: { record: BlobRecord; seq: number }[] = [];
  for (let settled = false; !settled;) {
    const before = await lastSeq(ctx, ctx.layout.ledger.stream);
    const [records, versions] = await Promise.all([allBlobRecords(ctx), liveVersions(ctx)]);
    const referenced = new Set(versions.map((v) => v.version.blob));
    const doomed = records.filter(({ record }) => !referenced.has(record.sha256) && Date.parse(record.uploadedAt) < cutoffMs);
    // Chained compare-and-set: each tombstone expects the previous one's sequence, so the whole
    // chain commits against the state read above; anyone writing in between makes us read again.
    let expected = before;
    settled = true;
    for (const { record } of doomed) {
      try {
        expected = await appendLedger(ctx, tombstone(ctx, record), expected);
        deleted.push({ record, seq: expected });
      } catch (error) {
        if (!isWrongLastSequence(error)) throw error;
        settled = false;
        break;
      }
    }
  }
  for (const { record, seq } of deleted) await cleanUpAfterDelete(ctx, record, seq);
  const uploadsRemoved = await removeAbandonedUploads(ctx, cutoffMs);
  return { blobsDeleted: deleted.map((d) => d.record.sha256).sort(), uploadsRemoved };
}

/** The ledger message that deletes a blob record. */
function tombstone(ctx: NatsContext, record: BlobRecord) {
  return { subject: ledgerSubject.blob(ctx, record.sha256), data: toJson({ sha256: record.sha256 }), tombstone: true, rollup: true };
}

/** After a committed delete: the bytes go, and so does the tombstone (only up to itself). */
async function cleanUpAfterDelete(ctx: NatsContext, record: BlobRecord, seq: number): Promise<void> {
  ctx.verified.delete(record.sha256);
  await removeObject(ctx, record.object);
  await ctx.jsm.streams.purge(ctx.layout.ledger.stream, { filter: ledgerSubject.blob(ctx, record.sha256), seq: seq + 1 }).catch(() => undefined);
}

/** Removes staged objects, orphan chunks and spool files untouched since `cutoffMs`; returns how many uploads they were. */
async function removeAbandonedUploads(ctx: NatsContext, cutoffMs: number): Promise<number> {
  const named = new Set((await allBlobRecords(ctx)).map(({ record }) => record.object));
  const removed = new Set<string>();
  const objects = await ctx.objects.list();
  const liveChunks = new Set<string>();
  for (const object of objects) {
    if (object.deleted) continue;
    liveChunks.add(object.nuid);
    if (named.has(object.name) || Date.parse(object.mtime) >= cutoffMs) continue;
    await removeObject(ctx, object.name);
    removed.add(object.name);
  }
  // Chunks without metadata: an upload that crashed before its object was complete.
  let orphans = 0;
  const prefix = `$O.${ctx.layout.objects}.C.`;
  const info = await ctx.jsm.streams.info(objectStream(ctx), { subjects_filter: `${prefix}>` });
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    if (liveChunks.has(subject.slice(prefix.length))) continue;
    const newest = await getLast(ctx, objectStream(ctx), subject);
    if (newest === undefined || newest.time.getTime() >= cutoffMs) continue;
    // Still orphan? An upload finishing right now would have written its metadata.
    const stillOrphan = (await ctx.objects.list()).every((o) => o.nuid !== subject.slice(prefix.length));
    if (!stillOrphan) continue;
    await ctx.jsm.streams.purge(objectStream(ctx), { filter: subject });
    orphans += 1;
  }
  for (const entry of await readdir(ctx.spoolDir).catch(() => [] as string[])) {
    if (!entry.endsWith('.part')) continue;
    const path = join(ctx.spoolDir, entry);
    try {
      if ((await stat(path)).mtimeMs >= cutoffMs) continue;
      await unlink(path);
      removed.add(entry.slice(0, -'.part'.length));
    } catch {
      // Finished or failed while we looked: nothing to remove.
    }
  }
  return removed.size + orphans;
}
