/**
 * Streaming inspection of a plain (already decompressed) tar with node-tar's Parser: every entry
 * goes through the shared safety rules, bodies are discarded as they pass, and a tar cut short
 * (in a header, in a body, or before its end-of-archive marker) is refused, as is one with more
 * bytes than its entries account for (see `tarBytesAllowed`), so a small gzip cannot inflate
 * without end.
 */
import { Header, Parser, type ReadEntry } from 'tar';
import type { ArchiveEntry, EntryChecker, EntryKind } from './entry-rules.ts';
import { invalidArchive } from './entry-rules.ts';
import type { StrataError } from '../errors.ts';

/** node-tar type names of entries that unpack to files, directories or links. */
const KINDS: Record<string, EntryKind> = {
  File: 'file',
  OldFile: 'file',
  ContiguousFile: 'file',
  Directory: 'directory',
  SymbolicLink: 'symlink',
  Link: 'hardlink',
};

/** Human names for the special entry types the rules refuse. */
const TYPE_NAMES: Record<string, string> = {
  CharacterDevice: 'character device',
  BlockDevice: 'block device',
  FIFO: 'fifo',
  GNUDumpDir: 'GNU dump directory',
};

/** Truncation message shared by every format, so operators see one wording. */
export const TRUNCATED = 'archive is truncated: unexpected end of file';

/** Largest metadata header (pax, GNU long name or link) read: room for a path and a link target at PATH_MAX, and extended attributes. */
export const MAX_META_BYTES = 64 * 1024;

/**
 * Bytes accepted after the end-of-archive marker. GNU tar pads an archive to a whole record
 * (10 KiB by default, more with -b), so real archives have some; this much is no padding.
 */
export const MAX_TRAILING_BYTES = 1024 * 1024;

/**
 * Most bytes one entry takes besides its body: its header block, one metadata header (a block
 * and at most MAX_META_BYTES), and the padding of both bodies to whole blocks.
 */
const ENTRY_FRAMING_BYTES = 4 * 512 + MAX_META_BYTES;

/**
 * The most tar bytes (for a tar.gz, gunzipped bytes) that `entries` entries with `fileBytes`
 * bytes of files account for: their bodies, ENTRY_FRAMING_BYTES per entry and one more for the
 * end-of-archive marker, and MAX_TRAILING_BYTES of slack. Under an archive's limits this is at
 * most maxUnpackedBytes + (maxEntries + 1) × ENTRY_FRAMING_BYTES + MAX_TRAILING_BYTES.
 */
function tarBytesAllowed(entries: number, fileBytes: number): number {
  return fileBytes + (entries + 1) * ENTRY_FRAMING_BYTES + MAX_TRAILING_BYTES;
}

/**
 * The refusal for `bytes` of tar when `entries` entries with `fileBytes` bytes of files account
 * for fewer (`tarBytesAllowed`), or undefined while they account for them all.
 */
export function tarOverrun(bytes: number, entries: number, fileBytes: number): StrataError | undefined {
  const allowed = tarBytesAllowed(entries, fileBytes);
  if (bytes <= allowed) return undefined;
  return invalidArchive(`tar data runs past what its ${entries} entries account for (over ${allowed} bytes): too much metadata, or bodies on entries that are not files`);
}

/** The refusal for more than MAX_TRAILING_BYTES after the end-of-archive marker. */
export function trailingData(): StrataError {
  return invalidArchive(`archive has more than ${MAX_TRAILING_BYTES} bytes after the tar's end-of-archive marker, far more than padding`);
}

/** True when `block` (512 bytes) is a tar header with a valid checksum (ustar, gnu or v7). */
export function isTarHeader(block: Buffer): boolean {
  if (block.length < 512 || block.subarray(0, 512).every((byte) => byte === 0)) return false;
  try {
    const header = new Header(block.subarray(0, 512));
    return header.cksumValid && header.path !== undefined && header.path !== '';
  } catch {
    return false;
  }
}

/** What `tarArchiveEntry` reads of an entry: node-tar's ReadEntry, or the fields tar-reader.ts gathers. */
type ParsedEntry = { type: string; path?: string | undefined; size?: number | undefined; linkpath?: string | undefined };

/**
 * The refusal for an archive whose first block (512 bytes) is neither a tar header nor the zero
 * block of an empty tar, or undefined when it is one of those.
 */
export function notATar(block: Buffer): StrataError | undefined {
  if (isTarHeader(block) || block.subarray(0, 512).every((byte) => byte === 0)) return undefined;
  return invalidArchive('not a tar archive: the first block is not a valid tar header');
}

/** Maps a parsed tar entry to what the safety rules check. */
export function tarArchiveEntry(entry: ParsedEntry): ArchiveEntry {
  const kind = KINDS[entry.type] ?? 'other';
  const result: ArchiveEntry = { path: entry.path ?? '', kind, size: kind === 'file' ? (entry.size ?? 0) : 0 };
  if (entry.linkpath) result.linkTarget = entry.linkpath; // a Header's is '' when it has none
  if (kind === 'other') result.typeName = TYPE_NAMES[entry.type] ?? `unsupported (${entry.type})`;
  return result;
}

/** The refusal for a metadata header (pax, long name) over MAX_META_BYTES, which the parser reports as an ignored entry. */
export function tarMetaTooLarge(entry: { path?: string | undefined }): StrataError {
  return invalidArchive(`tar metadata header for ${JSON.stringify(entry.path)} is larger than ${MAX_META_BYTES} bytes`);
}

/**
 * node-tar's Parser as every tar reader here uses it: lenient (so it reports rather than throws),
 * plain tar only, metadata headers capped at MAX_META_BYTES, and its warnings about invalid
 * headers or a cut-short archive, and its errors, handed to `fail` as archive errors.
 */
export function createTarParser(fail: (error: StrataError) => void): Parser {
  const parser = new Parser({ strict: false, zstd: false, brotli: false, maxMetaEntrySize: MAX_META_BYTES });
  parser.on('warn', (code: string, message: string) => {
    if (code === 'TAR_ENTRY_INVALID') fail(invalidArchive(`invalid tar header: ${message}`));
    else if (code === 'TAR_BAD_ARCHIVE' && message.startsWith('Truncated')) fail(invalidArchive(TRUNCATED));
    // 'Unrecognized archive format' is node-tar's word for an empty tar; callers check the first block.
  });
  parser.on('error', (error: Error) => fail(invalidArchive(`invalid tar: ${error.message}`, error)));
  return parser;
}

/**
 * Feeds tar bytes to node-tar's Parser and records the first failure. After a failure or the
 * end-of-archive marker it discards input, so memory stays bounded whatever follows; it counts
 * what it is fed, refusing more than `tarBytesAllowed` for the entries seen so far, or more than
 * MAX_TRAILING_BYTES after the marker (not counting the rest of the chunk the marker ends).
 */
export class TarInspector {
  readonly #checker: EntryChecker;
  readonly #parser: Parser;
  #first: Buffer | undefined = Buffer.alloc(0);
  #failure: Error | undefined;
  #eof = false;
  #lastWasNullBlock = false;
  #bytes = 0;
  #trailing = 0;

  constructor(checker: EntryChecker) {
    this.#checker = checker;
    this.#parser = createTarParser((error) => this.#fail(error));
    this.#parser.on('entry', (entry: ReadEntry) => {
      this.#lastWasNullBlock = false;
      entry.resume();
      this.#guard(() => this.#checker.check(tarArchiveEntry(entry)));
    });
    this.#parser.on('ignoredEntry', (entry: ReadEntry) => {
      this.#lastWasNullBlock = false;
      entry.resume();
      if (entry.meta) this.#fail(tarMetaTooLarge(entry));
      else this.#guard(() => this.#checker.check(tarArchiveEntry(entry)));
    });
    this.#parser.on('nullBlock', () => {
      this.#lastWasNullBlock = true;
    });
    this.#parser.on('eof', () => {
      this.#eof = true;
    });
  }

  /** The first reason the archive is refused, if any yet. */
  get failure(): Error | undefined {
    return this.#failure;
  }

  /** Feeds the next bytes; returns false when the parser wants a 'drain' before more. */
  write(chunk: Buffer): boolean {
    if (this.#failure !== undefined) return true;
    if (this.#eof) {
      this.#trailing += chunk.length;
      if (this.#trailing > MAX_TRAILING_BYTES) this.#fail(trailingData());
      return true;
    }
    this.#bytes += chunk.length;
    if (this.#first !== undefined) {
      this.#first = Buffer.concat([this.#first, chunk]);
      if (this.#first.length < 512) return true;
      const refusal = notATar(this.#first);
      if (refusal !== undefined) {
        this.#fail(refusal);
        return true;
      }
      chunk = this.#first;
      this.#first = undefined;
    }
    const more = this.#parser.write(chunk);
    // Checked once the parser has seen the chunk, so the entries it starts are counted.
    const overrun = tarOverrun(this.#bytes, this.#checker.entries, this.#checker.unpackedBytes);
    if (overrun !== undefined) this.#fail(overrun);
    return more;
  }

  /** Waits for the parser to want more bytes. */
  onDrain(listener: () => void): void {
    this.#parser.once('drain', listener);
  }

  /** Ends the input and returns the failure, if any, including truncation. */
  end(): Error | undefined {
    if (this.#failure !== undefined) return this.#failure;
    if (this.#first !== undefined) {
      return this.#fail(invalidArchive(this.#first.length === 0 ? 'not a tar archive: it is empty' : TRUNCATED));
    }
    if (!this.#eof) this.#parser.end();
    if (this.#failure !== undefined) return this.#failure;
    // GNU tar accepts a lone zero block at the end; anything less means the tar was cut short.
    if (!this.#eof && !this.#lastWasNullBlock) return this.#fail(invalidArchive(TRUNCATED));
    this.#guard(() => this.#checker.finish());
    return this.#failure;
  }

  #guard(action: () => void): void {
    if (this.#failure !== undefined) return;
    try {
      action();
    } catch (error) {
      this.#fail(error as Error);
    }
  }

  #fail(error: Error): Error {
    this.#failure ??= error;
    return this.#failure;
  }
}
