/**
 * Reads a tar or tar.gz archive as a stream (the agent's layers, an imported image's layers): fs.createReadStream → zlib gunzip → node-tar's Parser,
 * handing entries to the sink one at a time, in order. Backpressure runs end to end: the pump
 * waits while the Parser holds an unread body, and while too many bodiless entries queue up,
 * so memory stays bounded by a few chunks whatever the layer's size. It reads no more tar bytes
 * than the entries seen so far account for (`tarOverrun`), and past the end-of-archive marker at
 * most MAX_TRAILING_BYTES (padding), so a small gzip cannot inflate on and on.
 */
import { once } from 'node:events';
import { createReadStream } from 'node:fs';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import type { ReadEntry } from 'tar';
import { invalidArchive, type ArchiveEntry } from './entry-rules.ts';
import { createTarParser, isTarHeader, MAX_TRAILING_BYTES, tarArchiveEntry, tarMetaTooLarge, tarOverrun, trailingData, TRUNCATED } from './tar-inspector.ts';

/** One tar entry: the safety rules' view plus the metadata writing or copying it needs. */
export interface TarEntry extends ArchiveEntry {
  /** Unix permission bits as the archive records them (type bits removed), if it records any. */
  mode?: number;
  mtime?: Date;
  uid?: number;
  gid?: number;
}

/** Receives each entry in order; `body` is given for regular files and must be consumed or ignored. */
export type TarEntrySink = (entry: TarEntry, body: AsyncIterable<Buffer> | undefined) => Promise<void>;

/** Bodiless entries allowed to wait for the sink before the pump stops feeding the parser. */
const MAX_QUEUED = 64;

/** Most bytes handed to the parser at once (gunzip's and file streams' chunks are this size). */
const PIECE_BYTES = 64 * 1024;

/** Maps a parsed tar entry to the reader's view of it: the rules' view plus mode, mtime and owners. */
function toEntry(entry: ReadEntry): TarEntry {
  const result: TarEntry = tarArchiveEntry(entry);
  if (entry.mode !== undefined) result.mode = entry.mode & 0o7777;
  if (entry.mtime !== undefined) result.mtime = entry.mtime;
  if (entry.uid !== undefined) result.uid = entry.uid;
  if (entry.gid !== undefined) result.gid = entry.gid;
  return result;
}

/** Maps a zlib error to the archive error an operator should see. */
function gzipError(error: NodeJS.ErrnoException): Error {
  if (error.code === 'Z_BUF_ERROR') return invalidArchive(TRUNCATED, error);
  return invalidArchive(`gzip data is corrupt: ${error.message}`, error);
}

/** Streams the entries of the tar (gzipped when `gzip`) at `file` into `sink`, in archive order. */
export async function readTarLayer(file: string | Readable, gzip: boolean, sink: TarEntrySink, signal?: AbortSignal): Promise<void> {
  let failure: unknown;
  let onFailure = (): void => undefined;
  const failed = new Promise<void>((resolve) => {
    onFailure = resolve;
  });
  const fail = (error: unknown): void => {
    if (failure !== undefined) return;
    failure = error;
    onFailure();
  };
  const parser = createTarParser(fail);
  let chain = Promise.resolve();
  let queued = 0;
  let eof = false;
  let lastWasNullBlock = false;
  let trailing = 0;
  // What the parser has been fed, and what the entries it started account for.
  let bytes = 0;
  let entries = 0;
  let fileBytes = 0;

  const enqueue = (entry: ReadEntry, ignored: boolean): void => {
    lastWasNullBlock = false;
    entries += 1;
    fileBytes += tarArchiveEntry(entry).size;
    queued += 1;
    chain = chain.then(async () => {
      try {
        if (failure !== undefined) return;
        if (ignored && entry.meta) throw tarMetaTooLarge(entry);
        const view = toEntry(entry);
        await sink(view, view.kind === 'file' && !ignored ? entry : undefined);
      } catch (error) {
        fail(error);
      } finally {
        // Discards whatever the sink did not read, so the parser moves on to the next entry.
        entry.resume();
        queued -= 1;
      }
    });
  };
  parser.on('entry', (entry: ReadEntry) => enqueue(entry, false));
  parser.on('ignoredEntry', (entry: ReadEntry) => enqueue(entry, true));
  parser.on('nullBlock', () => {
    lastWasNullBlock = true;
  });
  parser.on('eof', () => {
    eof = true;
  });

  let head: Buffer | undefined = Buffer.alloc(0);
  const feed = async (chunk: Buffer): Promise<void> => {
    if (failure !== undefined) throw failure;
    if (head !== undefined) {
      // The first block must be a real header (or the zero block of an empty tar), else this is not a tar.
      head = Buffer.concat([head, chunk]);
      if (head.length < 512) return;
      const block = head.subarray(0, 512);
      if (!isTarHeader(block) && !block.every((byte) => byte === 0)) {
        throw invalidArchive('not a tar archive: the first block is not a valid tar header');
      }
      chunk = head;
      head = undefined;
    }
    // In pieces: the parser announces an entry only once the sink is done with the one before, so
    // what one write carries beyond that is not yet accounted for. A piece is far less than the
    // slack tarOverrun allows; a source's chunk may be any size.
    for (let at = 0; at < chunk.length; at += PIECE_BYTES) {
      if (eof) {
        // The parser would buffer whatever follows its end-of-archive marker: count it instead, and
        // read on only as far as padding goes (so a gzip cut short there is still refused).
        trailing += chunk.length - at;
        if (trailing > MAX_TRAILING_BYTES) throw trailingData();
        return;
      }
      const piece = chunk.length <= PIECE_BYTES ? chunk : chunk.subarray(at, at + PIECE_BYTES);
      bytes += piece.length;
      const more = parser.write(piece);
      // Checked once the parser has seen the piece, so the entries it starts are counted.
      const overrun = tarOverrun(bytes, entries, fileBytes);
      if (overrun !== undefined) throw overrun;
      if (!more) await Promise.race([once(parser, 'drain'), failed]);
      while (queued > MAX_QUEUED && failure === undefined) await Promise.race([chain, failed]);
      if (failure !== undefined) throw failure;
    }
  };
  const drain = async (input: AsyncIterable<Buffer>): Promise<void> => {
    for await (const chunk of input) await feed(chunk);
  };

  try {
    const source = typeof file === 'string' ? createReadStream(file, { highWaterMark: 64 * 1024 }) : file;
    if (gzip) await pipeline(source, createGunzip({ chunkSize: 64 * 1024 }), drain, { signal });
    else await pipeline(source, drain, { signal });
  } catch (error) {
    if (failure !== undefined) throw failure;
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw gzipError(error as NodeJS.ErrnoException);
    throw error;
  }
  if (head !== undefined) throw invalidArchive(head.length === 0 ? 'not a tar archive: it is empty' : TRUNCATED);
  if (!eof) parser.end();
  // Entries still queued in the parser are emitted as earlier ones finish, extending the chain.
  for (let settled: Promise<void> | undefined; settled !== chain; ) {
    settled = chain;
    await settled;
    await new Promise((resolve) => setImmediate(resolve));
  }
  if (failure !== undefined) throw failure;
  // GNU tar accepts a lone zero block at the end; anything less means the tar was cut short.
  if (!eof && !lastWasNullBlock) throw invalidArchive(TRUNCATED);
}
