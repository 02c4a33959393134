/**
 * Zip inspection through random access reads: yauzl walks the central directory (which sits at
 * the end, so a streaming pass cannot check it), and every entry goes through the shared safety
 * rules. Zip symlinks are unix-mode entries whose content is the target; it is read, at most 4 KiB.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import type { StrataError } from '../errors.ts';
import { EntryChecker, invalidArchive, MAX_PATH_BYTES, unsafeEntry, type ArchiveEntry, type EntryKind } from './entry-rules.ts';
import type { ArchiveLimits, ArchiveSummary } from './types.ts';

/** Reads one byte range of the stored upload; `end` is inclusive. */
export type RangeReader = (range: { start: number; end?: number }) => Readable;

/** Longest symlink target read from a zip entry (at upload time and when unpacking): the rules' limit for every format. */
export const MAX_ZIP_LINK_TARGET = MAX_PATH_BYTES;

const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFDIR = 0o040000;
const S_IFLNK = 0o120000;

/** Names of the unix file types a zip entry must not carry. */
const SPECIAL_TYPES: Record<number, string> = {
  0o010000: 'fifo',
  0o020000: 'character device',
  0o060000: 'block device',
  0o140000: 'socket',
};

/**
 * What a zip entry is, from the unix mode in its external attributes (0 for none) and its name.
 * A symlink whose own path is absolute or has `..` counts as a file, so the path rule refuses it
 * before its content (the target) is ever read.
 */
export function zipEntryKind(unixMode: number, name: string): { kind: EntryKind; typeName?: string } {
  const type = unixMode & S_IFMT;
  const special = SPECIAL_TYPES[type];
  if (special !== undefined) return { kind: 'other', typeName: special };
  if (type === S_IFLNK) return name.startsWith('/') || name.split('/').includes('..') ? { kind: 'file' } : { kind: 'symlink' };
  if (type === S_IFDIR || (type !== S_IFREG && name.endsWith('/'))) return { kind: 'directory' };
  return { kind: 'file' };
}

/** Waits for yauzl's next entry (lazyEntries), or undefined at the end of the central directory. */
export function nextZipEntry(zip: yauzl.ZipFile): Promise<yauzl.Entry | undefined> {
  return new Promise((resolve, reject) => {
    const onEntry = (entry: yauzl.Entry): void => settle(() => resolve(entry));
    const onEnd = (): void => settle(() => resolve(undefined));
    const onError = (error: Error): void => settle(() => reject(invalidArchive(`zip central directory is damaged: ${error.message}`, error)));
    const settle = (action: () => void): void => {
      zip.off('entry', onEntry).off('end', onEnd).off('error', onError);
      action();
    };
    zip.on('entry', onEntry).on('end', onEnd).on('error', onError);
    zip.readEntry();
  });
}

/** The refusal for a zip whose central directory yauzl could not open. */
export function zipOpenError(error: unknown): StrataError {
  return invalidArchive(`zip central directory is missing or damaged (truncated zip?): ${(error as Error).message}`, error);
}

/** yauzl's reader interface over the caller's range reads (yauzl's `end` is exclusive). */
class RangeRandomAccessReader extends yauzl.RandomAccessReader {
  readonly #read: RangeReader;

  constructor(read: RangeReader) {
    super();
    this.#read = read;
  }

  override _readStreamForRange(start: number, end: number): Readable {
    return this.#read({ start, end: end - 1 });
  }
}

/** The entry's name as unzippers see it (a Info-ZIP unicode path field wins), backslashes kept. */
function entryNames(entry: yauzl.Entry): string[] {
  const raw = entry.fileNameRaw;
  const plain = raw.toString((entry.generalPurposeBitFlag & 0x800) !== 0 ? 'utf8' : 'latin1');
  const chosen = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, true);
  return chosen === plain ? [plain] : [chosen, plain];
}

/** Reads a symlink entry's target, refusing one longer than MAX_ZIP_LINK_TARGET. */
async function readLinkTarget(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string): Promise<string> {
  if (entry.uncompressedSize > MAX_ZIP_LINK_TARGET) throw unsafeEntry(name, `symlink target is longer than ${MAX_ZIP_LINK_TARGET} bytes`);
  const stream = await zip.openReadStreamPromise(entry);
  const chunks: Buffer[] = [];
  let length = 0;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    length += chunk.length;
    if (length > MAX_ZIP_LINK_TARGET) {
      stream.destroy();
      throw unsafeEntry(name, `symlink target is longer than ${MAX_ZIP_LINK_TARGET} bytes`);
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** Classifies one zip entry for the shared rules, reading a symlink's target when needed. */
async function toEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string): Promise<ArchiveEntry> {
  if (name.includes('\\')) throw unsafeEntry(name, 'path contains a backslash');
  if (/^[A-Za-z]:/.test(name)) throw unsafeEntry(name, 'path is absolute (drive letter)');
  if (entry.isEncrypted()) throw invalidArchive(`zip entry ${JSON.stringify(name)} is encrypted and cannot be unpacked`);
  const size = entry.uncompressedSize;
  const { kind, typeName } = zipEntryKind(entry.externalFileAttributes >>> 16, name);
  if (kind === 'other') return { path: name, kind, typeName, size };
  if (kind === 'symlink') return { path: name, kind, size, linkTarget: await readLinkTarget(zip, entry, name) };
  return { path: name, kind, size: kind === 'directory' ? 0 : size };
}

/** Walks the central directory with yauzl, checking each entry in order. */
async function walk(zip: yauzl.ZipFile, checker: EntryChecker): Promise<void> {
  for (let entry = await nextZipEntry(zip); entry !== undefined; entry = await nextZipEntry(zip)) {
    for (const name of entryNames(entry)) checker.check(await toEntry(zip, entry, name));
  }
  checker.finish();
}

/** Inspects a zip through random access reads (end inclusive), for uploads the streaming pass identified as zip. */
export async function inspectZip(read: RangeReader, size: number, limits: ArchiveLimits): Promise<ArchiveSummary> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.fromRandomAccessReaderPromise(new RangeRandomAccessReader(read), size, {
      autoClose: false,
      decodeStrings: false,
      validateEntrySizes: true,
    });
  } catch (error) {
    throw zipOpenError(error);
  }
  const checker = new EntryChecker(limits);
  try {
    await walk(zip, checker);
  } finally {
    zip.close();
  }
  return { format: 'zip', entries: checker.entries, unpackedBytes: checker.unpackedBytes };
}
