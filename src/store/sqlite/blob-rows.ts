/** The `blobs` table: which blobs are stored and when they were created. */
import type { BlobInfo } from '../contract.ts';
import type { Database } from './database.ts';
import { integer, text, type Row } from './rows.ts';

/** The BlobInfo stored for `sha256`, or undefined. Reads only metadata, never the bytes. */
export function findBlobRow(database: Database, sha256: string): BlobInfo | undefined {
  const row = database.sql('SELECT sha256, size, created_at FROM blobs WHERE sha256 = ?').get(sha256);
  return row === undefined ? undefined : blobFromRow(row);
}

/** Converts a `blobs` row to a BlobInfo. */
export function blobFromRow(row: Row): BlobInfo {
  return { sha256: text(row, 'sha256'), size: integer(row, 'size'), createdAt: text(row, 'created_at') };
}

/** The component versions that name `sha256`, as `component:version`, oldest first. */
export function versionsUsingBlob(database: Database, sha256: string): string[] {
  return database
    .sql('SELECT component, version FROM versions WHERE blob = ? ORDER BY id')
    .all(sha256)
    .map((row) => `${text(row, 'component')}:${text(row, 'version')}`);
}
