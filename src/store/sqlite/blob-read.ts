/**
 * Reading the embedded store's blob files under the rules of `Store.getBlob` and `verifyBlob`
 * (`../verified-file.ts`): bad bytes are never served as good.
 */
import type { Readable } from 'node:stream';
import { StrataError } from '../../core/errors.ts';
import type { BlobInfo, ByteRange } from '../contract.ts';
import { readVerifiedFile, verifyFile } from '../verified-file.ts';
import { blobPath } from './blob-files.ts';
import { findBlobRow } from './blob-rows.ts';
import type { SqliteContext } from './context.ts';

/** Opens a blob for reading under the rules of `Store.getBlob`. */
export async function getBlob(ctx: SqliteContext, sha256: string, range?: ByteRange): Promise<{ info: BlobInfo; stream: Readable }> {
  const info = findBlobRow(ctx.database, sha256);
  if (info === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${sha256} not found`, { details: { sha256 } });
  return { info, stream: await readVerifiedFile(blobPath(ctx.dirs, sha256), info, ctx.verified, range) };
}

/** Reads the whole blob and reports whether it still hashes to its name. */
export async function verifyBlob(ctx: SqliteContext, sha256: string): Promise<boolean> {
  const info = findBlobRow(ctx.database, sha256);
  if (info === undefined) throw new StrataError('BLOB_NOT_FOUND', `blob ${sha256} not found`, { details: { sha256 } });
  return verifyFile(blobPath(ctx.dirs, sha256), info, ctx.verified);
}
