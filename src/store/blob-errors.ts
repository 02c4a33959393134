/** What every store backend says about a byte range it cannot serve and a blob that no longer matches its name. */
import { StrataError } from '../core/errors.ts';
import type { ByteRange } from './contract.ts';

/** Validates a range against the blob size; `end` past the last byte is clamped, as HTTP does. */
export function checkRange(range: ByteRange, size: number): { start: number; end: number } {
  const end = Math.min(range.end ?? size - 1, size - 1);
  if (!Number.isSafeInteger(range.start) || range.start < 0 || range.start >= size || end < range.start) {
    throw new StrataError('BAD_REQUEST', `range ${range.start}-${range.end ?? ''} is outside the blob's ${size} bytes`, {
      details: { start: range.start, end: range.end, size },
    });
  }
  return { start: range.start, end };
}

/** The error a blob that no longer matches its name produces. */
export function corrupt(sha256: string, cause?: unknown): StrataError {
  return new StrataError('BLOB_CORRUPT', undefined, { details: { sha256 }, cause });
}
