/**
 * Reads a tar or tar.gz archive as a stream (the agent's layers, an imported image's layers),
 * handing entries to the sink one at a time, in order. It pulls: the next bytes are read only
 * when the sink is done with what came before, so backpressure runs end to end and memory stays
 * bounded by a chunk or two whatever the layer's size. A file's body is slices of the chunks read.
 *
 * Each header is decoded by node-tar's Header and each pax record by its Pax, the same decoding
 * the upload-time inspector's Parser uses (tar-inspector.ts), so both see an archive alike. The
 * framing around them is here rather than in node-tar's Parser, which makes an event queue and a
 * stream per entry: reading the apply benchmark's 20,908-file tar from memory took 350–500 ms
 * through the Parser and 190 ms here, and made far less garbage (docs/benchmarks.md, Apply).
 *
 * Like the inspector it refuses invalid headers, a tar cut short (in a header, in a body, or before
 * its end-of-archive marker), metadata over MAX_META_BYTES, more tar bytes than the entries seen so
 * far account for (`tarOverrun`), and past the marker more than MAX_TRAILING_BYTES (padding), so a
 * small gzip cannot inflate on and on.
 */
import { createReadStream } from 'node:fs';
import { addAbortSignal, pipeline, type Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { Header, Pax } from 'tar';
import { invalidArchive, type ArchiveEntry } from './entry-rules.ts';
import { MAX_META_BYTES, MAX_TRAILING_BYTES, notATar, tarArchiveEntry, tarMetaTooLarge, tarOverrun, trailingData, TRUNCATED } from './tar-inspector.ts';

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

/** Size of a tar block: headers are one, bodies are padded to whole ones. */
const BLOCK = 512;

/** Chunks read from a file, and produced by gunzip. */
const CHUNK_BYTES = 64 * 1024;

/** The pending pax and GNU long-name records that apply to the next entry (`ex`) or to all that follow (`gex`). */
type Extended = ConstructorParameters<typeof Header>[2];

/** Streams the entries of the tar (gzipped when `gzip`) at `file` into `sink`, in archive order. */
export async function readTarLayer(file: string | Readable, gzip: boolean, sink: TarEntrySink, signal?: AbortSignal): Promise<void> {
  const source = typeof file === 'string' ? createReadStream(file, { highWaterMark: CHUNK_BYTES }) : file;
  // pipeline destroys the source when gunzip fails or is destroyed, and hands gunzip its errors.
  const input = gzip ? pipeline(source, createGunzip({ chunkSize: CHUNK_BYTES }), () => undefined) : source;
  try {
    signal?.throwIfAborted();
    if (signal !== undefined) addAbortSignal(signal, input);
    await new TarReader(input).read(sink, signal);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (typeof code === 'string' && code.startsWith('Z_')) throw gzipError(error as NodeJS.ErrnoException);
    throw error;
  } finally {
    input.destroy();
  }
}

/** Maps a zlib error to the archive error an operator should see. */
function gzipError(error: NodeJS.ErrnoException): Error {
  if (error.code === 'Z_BUF_ERROR') return invalidArchive(TRUNCATED, error);
  return invalidArchive(`gzip data is corrupt: ${error.message}`, error);
}

/** The entry types that are file-system entries; the other types node-tar knows are metadata or unsupported. */
const FS_TYPES = new Set(['File', 'OldFile', 'Link', 'SymbolicLink', 'CharacterDevice', 'BlockDevice', 'Directory', 'FIFO', 'ContiguousFile', 'GNUDumpDir']);

/** Metadata entries: they describe the next entry (or, global, all that follow) and are never handed on. */
const META_TYPES = new Set(['ExtendedHeader', 'OldExtendedHeader', 'GlobalExtendedHeader', 'NextFileHasLongPath', 'OldGnuLongPath', 'NextFileHasLongLinkpath']);

/** One pass over one archive's bytes. */
class TarReader {
  readonly #chunks: AsyncIterator<Buffer>;
  #chunk: Buffer = Buffer.alloc(0);
  #at = 0;
  /** Bytes taken from the input so far: all of every chunk before the current one, and `#at` of it. */
  #taken = 0;
  /** Body bytes of the current entry not yet taken. */
  #remain = 0;
  readonly #header = Buffer.alloc(BLOCK);
  #entries = 0;
  #fileBytes = 0;

  constructor(input: Readable) {
    this.#chunks = input[Symbol.asyncIterator]();
  }

  async read(sink: TarEntrySink, signal: AbortSignal | undefined): Promise<void> {
    let ex: Extended;
    let gex: Extended;
    let first = true;
    let lastWasNullBlock = false;
    for (;;) {
      signal?.throwIfAborted();
      const block = await this.#block();
      if (block === undefined) {
        if (first) throw invalidArchive('not a tar archive: it is empty');
        // GNU tar accepts a lone zero block at the end; anything less means the tar was cut short.
        if (!lastWasNullBlock) throw invalidArchive(TRUNCATED);
        return;
      }
      if (first) {
        const refusal = notATar(block.buffer.subarray(block.offset, block.offset + BLOCK));
        if (refusal !== undefined) throw refusal;
        first = false;
      }
      let header: Header;
      try {
        header = new Header(block.buffer, block.offset, ex, gex);
      } catch (error) {
        throw invalidArchive(`invalid tar header: ${(error as Error).message}`, error);
      }
      if (header.nullBlock) {
        if (lastWasNullBlock) return this.#trailing();
        lastWasNullBlock = true;
        continue;
      }
      lastWasNullBlock = false;
      const problem = headerProblem(header);
      if (problem !== undefined) throw invalidArchive(`invalid tar header: ${problem}`);
      const size = header.size ?? 0;
      // A pax record may say any number; the framing needs a whole one (node-tar's Parser rounds to blocks).
      if (!Number.isSafeInteger(size) || size < 0) throw invalidArchive(`invalid tar header: size ${JSON.stringify(String(size))} of ${JSON.stringify(header.path)} is not a whole number of bytes`);
      const padding = (BLOCK - (size % BLOCK)) % BLOCK;
      if (META_TYPES.has(header.type)) {
        if (size > MAX_META_BYTES) throw tarMetaTooLarge(header);
        if (size === 0) continue;
        const text = (await this.#bytes(size)).toString('utf8');
        await this.#skip(padding);
        ({ ex, gex } = applyMeta(header.type, text, ex, gex));
        continue;
      }
      const entry = toEntry(header, ex, gex);
      ex = undefined;
      this.#entries += 1;
      this.#fileBytes += entry.size;
      this.#remain = size;
      // Types node-tar does not unpack (sparse files, tape labels…) go to the sink bodiless, as 'other', to be refused.
      const hasBody = entry.kind === 'file' && FS_TYPES.has(header.type);
      await sink(entry, hasBody ? this.#body() : undefined);
      // Whatever the sink did not read, and the padding, is skipped.
      await this.#skip(this.#remain + padding);
      this.#remain = 0;
    }
  }

  /** The next 512-byte block, in place when the current chunk holds it whole; undefined at the end of input. */
  async #block(): Promise<{ buffer: Buffer; offset: number } | undefined> {
    if (this.#chunk.length - this.#at >= BLOCK) {
      const offset = this.#at;
      this.#advance(BLOCK);
      return { buffer: this.#chunk, offset };
    }
    let filled = 0;
    while (filled < BLOCK) {
      const piece = await this.#take(BLOCK - filled);
      if (piece === undefined) {
        if (filled === 0) return undefined;
        throw invalidArchive(TRUNCATED);
      }
      piece.copy(this.#header, filled);
      filled += piece.length;
    }
    return { buffer: this.#header, offset: 0 };
  }

  /** The next bytes of the input, at most `max` (≥ 1) of them; undefined at its end. */
  async #take(max: number): Promise<Buffer | undefined> {
    while (this.#at === this.#chunk.length) {
      const next = await this.#chunks.next();
      if (next.done === true) return undefined;
      this.#chunk = next.value;
      this.#at = 0;
    }
    const start = this.#at;
    const length = Math.min(max, this.#chunk.length - start);
    this.#advance(length);
    return start === 0 && length === this.#chunk.length ? this.#chunk : this.#chunk.subarray(start, start + length);
  }

  /**
   * Takes `length` bytes of the current chunk, refusing them when the entries seen so far do not
   * account for all the bytes taken: checked on every piece, whatever size the source's chunks are.
   */
  #advance(length: number): void {
    this.#at += length;
    this.#taken += length;
    const overrun = tarOverrun(this.#taken, this.#entries, this.#fileBytes);
    if (overrun !== undefined) throw overrun;
  }

  /** Exactly `length` bytes (a metadata record, at most MAX_META_BYTES), copied out of the chunks. */
  async #bytes(length: number): Promise<Buffer> {
    const result = Buffer.alloc(length);
    for (let filled = 0; filled < length; ) {
      const piece = await this.#take(length - filled);
      if (piece === undefined) throw invalidArchive(TRUNCATED);
      piece.copy(result, filled);
      filled += piece.length;
    }
    return result;
  }

  /** Passes over `length` bytes. */
  async #skip(length: number): Promise<void> {
    for (let left = length; left > 0; ) {
      const piece = await this.#take(left);
      if (piece === undefined) throw invalidArchive(TRUNCATED);
      left -= piece.length;
    }
  }

  /** The current entry's body, as slices of the input's chunks. */
  async *#body(): AsyncGenerator<Buffer> {
    while (this.#remain > 0) {
      const piece = await this.#take(this.#remain);
      if (piece === undefined) throw invalidArchive(TRUNCATED);
      this.#remain -= piece.length;
      yield piece;
    }
  }

  /** After the end-of-archive marker: reads on only as far as padding goes, so a gzip cut short there is still refused. */
  async #trailing(): Promise<void> {
    let trailing = this.#chunk.length - this.#at;
    this.#at = this.#chunk.length;
    for (;;) {
      if (trailing > MAX_TRAILING_BYTES) throw trailingData();
      const next = await this.#chunks.next();
      if (next.done === true) return;
      trailing += next.value.length;
    }
  }
}

/**
 * Why node-tar's Parser would call a header invalid (it warns TAR_ENTRY_INVALID, which the
 * inspector refuses), or undefined when it is valid.
 */
function headerProblem(header: Header): string | undefined {
  if (!header.cksumValid) return 'checksum failure';
  if (!header.path) return 'path is required';
  const link = header.type === 'Link' || header.type === 'SymbolicLink';
  if (link && !header.linkpath) return 'linkpath required';
  if (!link && header.type !== 'ExtendedHeader' && header.type !== 'GlobalExtendedHeader' && header.linkpath) return 'linkpath forbidden';
  return undefined;
}

/** A metadata record applied as node-tar's Parser applies it: pax local or global, or a GNU long path or link. */
function applyMeta(type: string, text: string, ex: Extended, gex: Extended): { ex: Extended; gex: Extended } {
  switch (type) {
    case 'ExtendedHeader':
    case 'OldExtendedHeader':
      return { ex: Pax.parse(text, ex, false), gex };
    case 'GlobalExtendedHeader':
      return { ex, gex: Pax.parse(text, gex, true) };
    case 'NextFileHasLongPath':
    case 'OldGnuLongPath':
      return { ex: Object.assign(ex ?? Object.create(null), { path: text.replace(/\0.*/, '') }) as Extended, gex };
    default: // NextFileHasLongLinkpath
      return { ex: Object.assign(ex ?? Object.create(null), { linkpath: text.replace(/\0.*/, '') }) as Extended, gex };
  }
}

/** The fields of an entry the reader's view needs. */
interface EntryFields {
  type: string;
  path?: string | undefined;
  linkpath?: string | undefined;
  size?: number | undefined;
  mode?: number | undefined;
  mtime?: Date | undefined;
  uid?: number | undefined;
  gid?: number | undefined;
}

/**
 * The reader's view of an entry (the rules' view plus mode, mtime and owners), from its header and
 * then its pending and global records, as node-tar's ReadEntry takes them: Header leaves a pax or
 * GNU long link target out of `linkpath`, and ReadEntry puts it back.
 */
function toEntry(header: Header, ex: Extended, gex: Extended): TarEntry {
  const fields: EntryFields = {
    type: header.type, path: header.path, linkpath: header.linkpath || undefined, size: header.size,
    mode: header.mode, mtime: header.mtime, uid: header.uid, gid: header.gid,
  };
  slurp(fields, ex, false);
  slurp(fields, gex, true);
  const result: TarEntry = tarArchiveEntry(fields);
  if (fields.mode !== undefined) result.mode = fields.mode & 0o7777;
  if (fields.mtime !== undefined) result.mtime = fields.mtime;
  if (fields.uid !== undefined) result.uid = fields.uid;
  if (fields.gid !== undefined) result.gid = fields.gid;
  return result;
}

/** ReadEntry's merge of a record into an entry: every field it sets, except a global record's path. */
function slurp(fields: EntryFields, record: Extended, global: boolean): void {
  if (record === undefined) return;
  for (const key of ['path', 'linkpath', 'size', 'mode', 'mtime', 'uid', 'gid'] as const) {
    const value = record[key];
    if (value === undefined || value === null || (key === 'path' && global)) continue;
    (fields as unknown as Record<string, unknown>)[key] = value;
  }
}
