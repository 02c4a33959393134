/**
 * Storing an uploaded archive: the bytes are teed into the store (hashed, size-limited) and into
 * the archive inspector as they stream in, and the blob becomes visible only once the inspector
 * accepts it. The HTTP upload route and the SSH front's SFTP uploads both call `storeUpload`, so
 * an archive is checked the same way whichever door it came through.
 */
import { once } from 'node:events';
import { pipeline } from 'node:stream/promises';
import { PassThrough, type Readable, type Writable } from 'node:stream';
import { inspectZip, startArchiveInspection, type ArchiveLimits, type ArchiveSummary } from './archive/inspect.ts';
import type { BlobInfo, Store } from '../store/contract.ts';

/** The limits an upload must respect. */
export interface UploadLimits {
  /** Largest upload accepted, in bytes. */
  maxUploadBytes: number;
  archive: ArchiveLimits;
}

/** Passes every chunk on while also writing it to `sink`, honouring the sink's backpressure. */
async function* teeInto(source: AsyncIterable<Uint8Array>, sink: Writable): AsyncGenerator<Uint8Array> {
  try {
    for await (const chunk of source) {
      if (!sink.write(chunk)) await once(sink, 'drain');
      yield chunk;
    }
    sink.end();
  } finally {
    if (!sink.writableEnded) sink.destroy();
  }
}

/** A readable of a stored blob's byte range, for inspectors that need random access. */
function readRange(store: Store, sha256: string, range: { start: number; end?: number }): Readable {
  const out = new PassThrough();
  store.getBlob(sha256, range).then(({ stream }) => pipeline(stream, out), (error: unknown) => out.destroy(error as Error)).catch(() => undefined);
  return out;
}

/**
 * Streams `source` into the store as a blob, refusing it (nothing kept) when it is over the size
 * limit, does not hash to `expectedSha256`, or is not an acceptable archive.
 */
export async function storeUpload(store: Store, source: AsyncIterable<Uint8Array>, limits: UploadLimits, expectedSha256?: string): Promise<{ info: BlobInfo; summary: ArchiveSummary }> {
  const inspection = startArchiveInspection(limits.archive);
  inspection.verdict.catch(() => undefined);
  let summary: ArchiveSummary | undefined;
  const summarize = async (read: (range: { start: number; end?: number }) => Readable, size: number): Promise<ArchiveSummary> => {
    const verdict = await inspection.verdict;
    return 'entries' in verdict ? verdict : inspectZip(read, size, limits.archive);
  };
  const info = await store.putBlob(teeInto(source, inspection.sink), {
    maxBytes: limits.maxUploadBytes,
    ...(expectedSha256 ? { expectedSha256 } : {}),
    beforeCommit: async (staged) => {
      summary = await summarize((range) => staged.read(range), staged.size);
    },
  });
  // A backend may skip beforeCommit when the bytes were stored already; inspect them anyway.
  summary ??= await summarize((range) => readRange(store, info.sha256, range), info.size);
  return { info, summary };
}
