/**
 * Safe extraction of a configuration's layers into a fresh release tree. Each layer's format is
 * sniffed from its magic bytes; every entry passes the upload-time rules (entry-rules.ts: paths,
 * link targets, special files) and then the filesystem checks of TreeWriter (no write through a
 * symlink an earlier layer made). Limits count across all layers. Any failure removes the tree.
 */
import { mkdir, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { EntryChecker, invalidArchive, unsafeEntry } from '../../core/archive/entry-rules.ts';
import { isTarHeader } from '../../core/archive/tar-inspector.ts';
import { StrataError } from '../../core/errors.ts';
import { peekStream } from '../../lib/peek-stream.ts';
import { inLayer, isNoSpace, pathParts, type LayerEntry } from './layer-entry.ts';
import { removeTree } from './remove-tree.ts';
import { readTarLayer } from './tar-layer.ts';
import { TreeWriter } from './tree-writer.ts';
import { readZipLayer } from './zip-layer.ts';

/**
 * One layer to unpack: its name (for errors) and either the local, already verified archive
 * file (or the promise of it, for a blob still downloading when the unpack starts), or a stream of
 * its bytes as they download (tar and tar.gz only; see fetch/byte-tap.ts).
 */
export type UnpackLayer = { name: string; path: string | Promise<string> } | { name: string; stream: Readable };

/** Limits across all layers: entries of any kind, and declared bytes of regular files. */
export interface UnpackLimits {
  maxFiles: number;
  maxBytes: number;
}

/** Input of `unpackLayers`. */
export interface UnpackOptions {
  layers: UnpackLayer[];
  /** The directory to create; it must not exist (the caller renames it into place on success). */
  target: string;
  limits: UnpackLimits;
  signal?: AbortSignal;
}

/** What was unpacked: entries of every kind (whiteouts included) and file bytes written. */
export interface UnpackResult {
  files: number;
  bytes: number;
}

/** Marker basename that empties a directory of lower layers' content (OCI opaque whiteout). */
/** A layer given as a stream that can only be unpacked from a file; the caller uses the file. */
export class StreamNotSupported extends Error {
  override readonly name = 'StreamNotSupported';
}

const OPAQUE = '.wh..wh..opq';
const WHITEOUT = '.wh.';

/** The entry rules with their per-archive limits disabled: `unpackLayers` counts across layers itself. */
const UNLIMITED = { maxEntries: Number.MAX_SAFE_INTEGER, maxUnpackedBytes: Number.MAX_SAFE_INTEGER };

/** The layer's format from its first bytes. */
async function sniff(file: string): Promise<'gzip' | 'zip' | 'tar'> {
  const handle = await open(file, 'r');
  try {
    const head = Buffer.alloc(512);
    const { bytesRead } = await handle.read(head, 0, 512, 0);
    return classify(head, bytesRead);
  } finally {
    await handle.close();
  }
}

/** Reads the first bytes of a stream, names its format, and returns a stream of all its bytes again. */
async function sniffStream(source: Readable): Promise<{ format: 'gzip' | 'zip' | 'tar'; stream: Readable }> {
  const { head, stream } = await peekStream(source, 512);
  const block = Buffer.alloc(512);
  head.copy(block);
  try {
    return { format: classify(block, head.length), stream };
  } catch (error) {
    stream.destroy();
    throw error;
  }
}

/** The format the first bytes of an archive announce. */
function classify(head: Buffer, bytesRead: number): 'gzip' | 'zip' | 'tar' {
  if (bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  const magic = head.subarray(0, 4).toString('latin1');
  if (bytesRead >= 4 && (magic === 'PK\x03\x04' || magic === 'PK\x05\x06')) return 'zip';
  if (bytesRead === 512 && isTarHeader(head)) return 'tar';
  const what = bytesRead === 0 ? 'the file is empty' : 'no gzip, zip or tar signature at its start';
  throw invalidArchive(`not an archive: ${what} (expected a tar.gz, a tar or a zip)`);
}

/** Unpacks `layers` in order into the new directory `target`; on any failure `target` is removed. */
export async function unpackLayers(options: UnpackOptions): Promise<UnpackResult> {
  const { layers, target, limits, signal } = options;
  signal?.throwIfAborted();
  await mkdir(target, 0o755); // fails if it exists: never unpack over (or later remove) a tree we did not make
  const writer = new TreeWriter(target);
  const totals: UnpackResult = { files: 0, bytes: 0 };
  let layer = '';
  try {
    for (const current of layers) {
      layer = current.name;
      writer.startLayer(layer);
      const checker = new EntryChecker(UNLIMITED);
      const sink = (entry: LayerEntry, body: AsyncIterable<Buffer> | undefined): Promise<void> => {
        signal?.throwIfAborted();
        return applyEntry(writer, checker, limits, totals, entry, body);
      };
      if ('stream' in current) {
        const sniffed = await sniffStream(current.stream);
        if (sniffed.format === 'zip') {
          // A zip is read from its central directory at the end: it cannot be unpacked as it streams.
          sniffed.stream.destroy();
          throw new StreamNotSupported('a zip layer cannot be unpacked while it downloads');
        }
        await readTarLayer(sniffed.stream, sniffed.format === 'gzip', sink, signal);
      } else {
        const file = await current.path;
        const format = await sniff(file);
        if (format === 'zip') await readZipLayer(file, sink, signal);
        else await readTarLayer(file, format === 'gzip', sink, signal);
      }
      checker.finish();
    }
    layer = '';
    await writer.finish();
    return totals;
  } catch (error) {
    await removeTree(target);
    if (isNoSpace(error)) {
      throw new StrataError('INSUFFICIENT_STORAGE', `no space left on the device while unpacking${layer ? ` layer ${JSON.stringify(layer)}` : ''} into ${target}`, {
        details: { layer, target },
        cause: error,
      });
    }
    throw layer === '' ? error : inLayer(layer, error);
  }
}

/** Counts, checks and writes one entry. */
async function applyEntry(
  writer: TreeWriter,
  checker: EntryChecker,
  limits: UnpackLimits,
  totals: UnpackResult,
  entry: LayerEntry,
  body: AsyncIterable<Buffer> | undefined,
): Promise<void> {
  if (totals.files + 1 > limits.maxFiles) throw unsafeEntry(entry.path, `the layers have more than ${limits.maxFiles} entries in all`);
  if (totals.bytes + entry.size > limits.maxBytes) throw unsafeEntry(entry.path, `the layers unpack to more than ${limits.maxBytes} bytes in all`);
  checker.check(entry);
  totals.files += 1;
  totals.bytes += entry.size;
  const parts = pathParts(entry.path);
  const base = parts.at(-1) ?? '';
  if (base.startsWith(WHITEOUT)) return whiteout(writer, entry.path, parts.slice(0, -1), base);
  switch (entry.kind) {
    case 'directory':
      return writer.directory(entry.path, parts, entry.mode);
    case 'symlink':
      return writer.symlink(entry.path, parts, entry.linkTarget ?? '');
    case 'hardlink':
      return writer.hardlink(entry.path, parts, pathParts(entry.linkTarget ?? ''));
    case 'file': {
      const written = await writer.file(entry.path, parts, entry.mode, entry.mtime, body ?? emptyBody());
      // The readers guarantee this (tar framing, yauzl's size check); re-checked because the limit depends on it.
      if (written !== entry.size) throw invalidArchive(`entry ${JSON.stringify(entry.path)} holds ${written} bytes, not the ${entry.size} its header declares`);
      return;
    }
    default:
      throw unsafeEntry(entry.path, `${entry.typeName ?? 'special file'} entries are not allowed`);
  }
}

/** Applies a whiteout marker; other `.wh..wh.` names (AUFS bookkeeping) are dropped unapplied. */
async function whiteout(writer: TreeWriter, entry: string, dir: string[], base: string): Promise<void> {
  if (base === OPAQUE) return writer.opaque(entry, dir);
  if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return;
  const name = base.slice(WHITEOUT.length);
  if (name === '' || name === '.' || name === '..') throw unsafeEntry(entry, 'whiteout names no entry');
  return writer.whiteout(entry, dir, name);
}

/** The body of a file entry that has none (an empty file). */
async function* emptyBody(): AsyncGenerator<Buffer> {}
