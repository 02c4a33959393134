/**
 * Reads a zip layer with yauzl (lazyEntries: one entry at a time, each body streamed), handing
 * entries to the sink in central-directory order. Unix modes come from the external attributes
 * when the zip was made on unix; zip symlinks are S_IFLNK entries whose content is the target.
 */
import type { Readable } from 'node:stream';
import yauzl from 'yauzl';
import { invalidArchive, unsafeEntry } from '../../core/archive/entry-rules.ts';
import { MAX_ZIP_LINK_TARGET, nextZipEntry, zipEntryKind, zipOpenError } from '../../core/archive/zip-inspect.ts';
import type { EntrySink, LayerEntry } from './layer-entry.ts';

/** Made-by host 3 is unix: only then do the external attributes hold a unix mode. */
const MADE_BY_UNIX = 3;

/** Re-throws a zip body's read failure (bad CRC, wrong size, cut short) as INVALID_ARCHIVE. */
async function* checkedBody(stream: Readable, name: string): AsyncGenerator<Buffer> {
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) yield chunk;
  } catch (error) {
    throw invalidArchive(`zip entry ${JSON.stringify(name)} is damaged: ${(error as Error).message}`, error);
  } finally {
    stream.destroy();
  }
}

/** Reads a symlink entry's target, refusing one longer than MAX_ZIP_LINK_TARGET. */
async function readLinkTarget(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string): Promise<string> {
  if (entry.uncompressedSize > MAX_ZIP_LINK_TARGET) throw unsafeEntry(name, `symlink target is longer than ${MAX_ZIP_LINK_TARGET} bytes`);
  const chunks: Buffer[] = [];
  for await (const chunk of checkedBody(await zip.openReadStreamPromise(entry), name)) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

/** The entry's name as unpacked, refusing names other unzippers would read differently and unsafely. */
function entryName(entry: yauzl.Entry): string {
  const raw = entry.fileNameRaw;
  const plain = raw.toString((entry.generalPurposeBitFlag & 0x800) !== 0 ? 'utf8' : 'latin1');
  const name = yauzl.getFileNameLowLevel(entry.generalPurposeBitFlag, raw, entry.extraFields, true);
  for (const candidate of name === plain ? [name] : [name, plain]) {
    if (candidate.includes('\\')) throw unsafeEntry(candidate, 'path contains a backslash');
    if (/^[A-Za-z]:/.test(candidate)) throw unsafeEntry(candidate, 'path is absolute (drive letter)');
    if (candidate !== name && (candidate.startsWith('/') || candidate.split('/').includes('..'))) {
      throw unsafeEntry(candidate, 'the plain name (read by unzippers that ignore the unicode path field) escapes the tree');
    }
  }
  return name;
}

/** Classifies one zip entry, reading a symlink's target when needed. */
async function toEntry(zip: yauzl.ZipFile, entry: yauzl.Entry, name: string): Promise<LayerEntry> {
  if (entry.isEncrypted()) throw invalidArchive(`zip entry ${JSON.stringify(name)} is encrypted and cannot be unpacked`);
  const unixMode = entry.versionMadeBy >> 8 === MADE_BY_UNIX ? entry.externalFileAttributes >>> 16 : 0;
  const result: LayerEntry = { path: name, kind: 'file', size: entry.uncompressedSize, mtime: entry.getLastModDate() };
  if ((unixMode & 0o7777) !== 0) result.mode = unixMode & 0o7777;
  const { kind, typeName } = zipEntryKind(unixMode, name);
  if (kind === 'other') return { ...result, kind, typeName };
  if (kind === 'symlink') return { ...result, kind, size: 0, linkTarget: await readLinkTarget(zip, entry, name) };
  if (kind === 'directory') return { ...result, kind, size: 0 };
  return result;
}

/** Streams the entries of the zip at `file` into `sink`, in central-directory order. */
export async function readZipLayer(file: string, sink: EntrySink, signal?: AbortSignal): Promise<void> {
  let zip: yauzl.ZipFile;
  try {
    zip = await yauzl.openPromise(file, { lazyEntries: true, autoClose: false, decodeStrings: false, validateEntrySizes: true });
  } catch (error) {
    throw zipOpenError(error);
  }
  try {
    for (let entry = await nextZipEntry(zip); entry !== undefined; entry = await nextZipEntry(zip)) {
      signal?.throwIfAborted();
      const name = entryName(entry);
      const view = await toEntry(zip, entry, name);
      if (view.kind !== 'file') {
        await sink(view, undefined);
        continue;
      }
      const opened = entry;
      let stream: Readable | undefined;
      // The body is opened only when the sink reads it, so a whiteout or a refused entry opens nothing.
      const body = (async function* (): AsyncGenerator<Buffer> {
        stream = await zip.openReadStreamPromise(opened).catch((error: unknown) => {
          throw invalidArchive(`zip entry ${JSON.stringify(name)} is damaged: ${(error as Error).message}`, error);
        });
        yield* checkedBody(stream, name);
      })();
      try {
        await sink(view, body);
      } finally {
        stream?.destroy();
      }
    }
  } finally {
    zip.close();
  }
}
