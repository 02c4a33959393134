/**
 * What both backends do while an upload streams in: count it against the size limit before a
 * chunk is written, hash it, write it whole to a local staging file, and let `beforeCommit` read
 * that file back at random.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { StrataError } from '../core/errors.ts';
import type { StagedBlob } from './contract.ts';

/** Counts and hashes an upload's chunks, refusing the one that goes past `maxBytes`. */
export class UploadMeter {
  size = 0;
  private readonly hash = createHash('sha256');
  private readonly maxBytes: number | undefined;

  constructor(maxBytes: number | undefined) {
    this.maxBytes = maxBytes;
  }

  /** Takes the next chunk; throws PAYLOAD_TOO_LARGE before it is written anywhere. */
  take(chunk: Uint8Array): void {
    this.size += chunk.byteLength;
    if (this.maxBytes !== undefined && this.size > this.maxBytes) throw new StrataError('PAYLOAD_TOO_LARGE', undefined, { details: { maxBytes: this.maxBytes } });
    this.hash.update(chunk);
  }

  /** The upload's sha256 and size (call once, at the end). */
  result(): { sha256: string; size: number } {
    return { sha256: this.hash.digest('hex'), size: this.size };
  }
}

/** Writes a whole chunk to the staging file. */
export async function writeAll(handle: FileHandle, chunk: Uint8Array): Promise<void> {
  let written = 0;
  while (written < chunk.byteLength) {
    const result = await handle.write(chunk, written, chunk.byteLength - written);
    written += result.bytesWritten;
  }
}

/** The view of a staged upload that `beforeCommit` gets: the staging file, read at random. */
export function stagedFile(file: string, sha256: string, size: number): StagedBlob {
  return {
    sha256,
    size,
    read(range): Readable {
      return createReadStream(file, range === undefined ? {} : { start: range.start, ...(range.end === undefined ? {} : { end: range.end }) });
    },
  };
}
