/**
 * Blob records in the ledger (`<prefix>.ledger.blob.<sha256>`): a blob is visible exactly while
 * its subject's newest message is a record. The record names the object-store object holding the
 * bytes; objects are named per upload, so deleting an old blob's object never races a new upload
 * of the same bytes.
 */
import type { BlobInfo } from '../contract.ts';
import { fromJson, isTombstone } from './codec.ts';
import type { NatsContext } from './context.ts';
import { ledgerSubject } from './ledger.ts';
import { getLast, lastPerSubject, type Stored } from './stream-reads.ts';

/** What the ledger keeps about a blob. */
export interface BlobRecord {
  sha256: string;
  size: number;
  createdAt: string;
  /** The latest upload of these bytes; sweep's grace period counts from it. */
  uploadedAt: string;
  /** The object-store object holding the bytes. */
  object: string;
}

/** A blob's record (undefined when absent or deleted) and its subject's newest sequence (0: none), for compare-and-set. */
export async function readBlobRecord(ctx: NatsContext, sha256: string): Promise<{ record: BlobRecord | undefined; seq: number }> {
  const message = await getLast(ctx, ctx.layout.ledger.stream, ledgerSubject.blob(ctx, sha256));
  if (message === undefined) return { record: undefined, seq: 0 };
  return { record: isTombstone(message) ? undefined : fromJson<BlobRecord>(message.data), seq: message.seq };
}

/** Every live blob record, with the sequence it was read at. */
export async function allBlobRecords(ctx: NatsContext): Promise<{ record: BlobRecord; seq: number }[]> {
  const messages = await lastPerSubject(ctx, ctx.layout.ledger.stream, ledgerSubject.allBlobs(ctx));
  return messages.filter((m: Stored) => !isTombstone(m)).map((m) => ({ record: fromJson<BlobRecord>(m.data), seq: m.seq }));
}

/** The contract's view of a record. */
export function blobInfo(record: BlobRecord): BlobInfo {
  return { sha256: record.sha256, size: record.size, createdAt: record.createdAt };
}

/** Facts about a stored blob, or undefined. */
export async function statBlob(ctx: NatsContext, sha256: string): Promise<BlobInfo | undefined> {
  const { record } = await readBlobRecord(ctx, sha256);
  return record === undefined ? undefined : blobInfo(record);
}
