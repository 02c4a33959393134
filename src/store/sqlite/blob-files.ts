/**
 * Where blob bytes live on disk (content-addressed paths) and how file-system errors map to
 * Strata errors (a full disk becomes INSUFFICIENT_STORAGE).
 */
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { StrataError } from '../../core/errors.ts';

/** The directories of a store under its root. */
export interface BlobDirs {
  blobs: string;
  uploads: string;
}

/** The blob and upload directories under the store root `dir`. */
export function blobDirs(dir: string): BlobDirs {
  return { blobs: join(dir, 'blobs'), uploads: join(dir, 'uploads') };
}

/** The directory a blob lives in: fanned out by its first two hex digits to keep directories small. */
export function blobShardDir(dirs: BlobDirs, sha256: string): string {
  return join(dirs.blobs, sha256.slice(0, 2));
}

/** The file holding a blob's bytes. */
export function blobPath(dirs: BlobDirs, sha256: string): string {
  return join(blobShardDir(dirs, sha256), sha256);
}

/** A fresh, unguessable path for staging an upload; the `.part` suffix is what sweep looks for. */
export function newUploadPath(dirs: BlobDirs): string {
  return join(dirs.uploads, `${randomBytes(16).toString('hex')}.part`);
}

/** The errno-style code of a Node error, if any. */
export function errorCode(error: unknown): string | undefined {
  if (typeof error === 'object' && error !== null && 'code' in error && typeof error.code === 'string') return error.code;
  return undefined;
}

/** SQLite's primary result code for "database or disk is full". */
const SQLITE_FULL = 13;

/**
 * Turns "disk full" from the file system or SQLite into INSUFFICIENT_STORAGE and returns any
 * other error unchanged, so callers can `throw storageError(error)`.
 */
export function storageError(error: unknown): unknown {
  if (error instanceof StrataError) return error;
  const code = errorCode(error);
  const sqliteCode = typeof error === 'object' && error !== null && 'errcode' in error ? error.errcode : undefined;
  if (code === 'ENOSPC' || code === 'EDQUOT' || (typeof sqliteCode === 'number' && (sqliteCode & 0xff) === SQLITE_FULL)) {
    return new StrataError('INSUFFICIENT_STORAGE', undefined, { cause: error });
  }
  return error;
}
