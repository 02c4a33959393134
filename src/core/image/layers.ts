/**
 * An image's layers, read twice from the spilled archive. The scan checks every entry with the
 * shared safety rules and the import's limits, and collects each layer's whiteouts (`.wh.X`
 * deletes X from lower layers) and opaque markers (`.wh..wh..opq` empties its directory of
 * lower layers' content). The rewrite then writes each layer again as a deterministic tar.gz
 * without the markers and without what upper layers delete, because deploy-tools agents know
 * nothing of whiteouts: unpacking the rewritten layers in order gives the image's merged tree.
 */
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { pipeline } from 'node:stream/promises';
import { Sha256Meter } from '../../lib/sha256-meter.ts';
import { createGzip } from 'node:zlib';
import { EntryChecker } from '../archive/entry-rules.ts';
import { encodeTarHeader } from '../archive/pack.ts';
import { readTarLayer, type TarEntry } from '../archive/tar-reader.ts';
import { isStrataError, StrataError } from '../errors.ts';
import { imageTooLarge, invalidImage, type ImageLimits } from './types.ts';
import { normalizeArchivePath, type SpilledFile } from './spill.ts';

const WHITEOUT = '.wh.';
const OPAQUE = '.wh..wh..opq';
const BLOCK = 512;

/** What one layer deletes from the layers below it. */
export interface LayerMarkers {
  /** Paths removed, with everything under them. */
  whiteouts: string[];
  /** Directories whose lower-layer content is removed (the directory itself stays). */
  opaques: string[];
}

/** A layer's scan: its markers, entry count, and its hard links (target → link paths, in order). */
export interface LayerScan extends LayerMarkers {
  entries: number;
  links: Map<string, string[]>;
}

/** Running totals across the layers, against the import's limits. */
export interface LayerTotals {
  entries: number;
  bytes: number;
}

/** A rewritten layer: a deterministic tar.gz in the temp directory. */
export interface RewrittenLayer {
  file: string;
  size: number;
  sha256: string;
  entries: number;
}

/** What a marker entry means, or undefined for an ordinary entry. */
function marker(entryPath: string): { opaque: string } | { whiteout: string } | { other: true } | undefined {
  const base = path.posix.basename(entryPath);
  if (!base.startsWith(WHITEOUT)) return undefined;
  const dir = path.posix.dirname(entryPath);
  const parent = dir === '.' ? '' : dir;
  if (base === OPAQUE) return { opaque: parent };
  // Other `.wh..wh.` names are aufs bookkeeping (hard-link directories): never part of the tree.
  if (base.startsWith(`${WHITEOUT}${WHITEOUT}`)) return { other: true };
  const name = base.slice(WHITEOUT.length);
  return { whiteout: parent === '' ? name : `${parent}/${name}` };
}

/** Prefixes an archive error with the layer it came from. */
function inLayer(index: number, error: unknown): unknown {
  if (!isStrataError(error) || !['UNSAFE_ARCHIVE_ENTRY', 'INVALID_ARCHIVE', 'INVALID_IMAGE'].includes(error.code)) return error;
  return new StrataError(error.code, `layer ${index}: ${error.message}`, { details: { ...error.details, layer: index }, cause: error });
}

/** The compression of a layer file from its magic bytes: gzip or none; zstd is refused. */
async function isGzip(file: SpilledFile, index: number): Promise<boolean> {
  const handle = await open(file.file, 'r');
  try {
    const head = Buffer.alloc(4);
    const { bytesRead } = await handle.read(head, 0, 4, 0);
    if (bytesRead === 4 && head.readUInt32BE(0) === 0x28b52ffd) throw invalidImage(`layer ${index} is zstd-compressed; save the image with gzip or uncompressed layers`);
    return bytesRead >= 2 && head[0] === 0x1f && head[1] === 0x8b;
  } finally {
    await handle.close();
  }
}

/** Checks one layer's entries and collects its markers. */
export async function scanLayer(file: SpilledFile, index: number, limits: ImageLimits, totals: LayerTotals): Promise<LayerScan> {
  const checker = new EntryChecker({ maxEntries: Number.MAX_SAFE_INTEGER, maxUnpackedBytes: Number.MAX_SAFE_INTEGER });
  const scan: LayerScan = { whiteouts: [], opaques: [], entries: 0, links: new Map() };
  try {
    await readTarLayer(file.file, await isGzip(file, index), async (entry) => {
      totals.entries += 1;
      totals.bytes += entry.size;
      if (totals.entries > limits.maxEntries) throw imageTooLarge(`the image's layers have more than ${limits.maxEntries} entries`, 'maxEntries', totals.entries);
      if (totals.bytes > limits.maxUnpackedBytes) throw imageTooLarge(`the image's layers unpack to more than ${limits.maxUnpackedBytes} bytes`, 'maxUnpackedBytes', totals.bytes);
      checker.check(entry);
      scan.entries += 1;
      const entryPath = normalizeArchivePath(entry.path);
      const found = marker(entryPath);
      if (found && 'opaque' in found) scan.opaques.push(found.opaque);
      else if (found && 'whiteout' in found) scan.whiteouts.push(found.whiteout);
      if (entry.kind === 'hardlink') {
        const target = normalizeArchivePath(entry.linkTarget ?? '');
        scan.links.set(target, [...(scan.links.get(target) ?? []), entryPath]);
      }
    });
    checker.finish();
  } catch (error) {
    throw inLayer(index, error);
  }
  return scan;
}

/** What the layers above a layer delete, accumulated from the top down. */
export class HiddenPaths {
  readonly #removed = new Set<string>();
  readonly #opaque = new Set<string>();

  /** Adds one (upper) layer's markers. */
  add(markers: LayerMarkers): void {
    for (const removed of markers.whiteouts) this.#removed.add(removed);
    for (const dir of markers.opaques) this.#opaque.add(dir);
  }

  /** True when an upper layer deletes `entryPath` (normalized), itself or through a parent. */
  hides(entryPath: string): boolean {
    if (entryPath === '') return false;
    if (this.#removed.size === 0 && this.#opaque.size === 0) return false;
    if (this.#opaque.has('')) return true;
    let prefix = '';
    for (const part of entryPath.split('/')) {
      prefix = prefix === '' ? part : `${prefix}/${part}`;
      if (this.#removed.has(prefix)) return true;
      if (prefix !== entryPath && this.#opaque.has(prefix)) return true;
    }
    return false;
  }
}

/** node-tar's type name for each kind an accepted entry can have. */
const TAR_TYPES = { file: 'File', directory: 'Directory', symlink: 'SymbolicLink', hardlink: 'Link' } as const;

/** The header of a kept entry, with the image's metadata (owners, mode, mtime) as it was; `linkTo` redirects a hard link. */
function headerOf(entry: TarEntry, entryPath: string, linkTo?: string): Buffer {
  const kind = entry.kind === 'other' ? 'file' : entry.kind;
  return encodeTarHeader({
    path: kind === 'directory' ? `${entryPath}/` : entryPath,
    mode: entry.mode ?? (kind === 'directory' ? 0o755 : 0o644),
    uid: entry.uid ?? 0,
    gid: entry.gid ?? 0,
    size: kind === 'file' ? entry.size : 0,
    mtime: entry.mtime ?? new Date(0),
    type: TAR_TYPES[kind],
    linkpath: kind === 'symlink' ? (entry.linkTarget ?? '') : kind === 'hardlink' ? (linkTo ?? normalizeArchivePath(entry.linkTarget ?? '')) : '',
    uname: '',
    gname: '',
  });
}

/**
 * Writes layer `index` again to `target` as tar.gz, without markers and without what `hidden`
 * says upper layers delete; `onKept` sees each kept non-directory path (for PATH lookups). A
 * deleted file that kept hard links still name is written under its first kept link instead,
 * and its other links point there, as the merged tree still has those names.
 */
export async function rewriteLayer(file: SpilledFile, index: number, scan: Pick<LayerScan, 'links'>, hidden: HiddenPaths, target: string, onKept: (entryPath: string) => void): Promise<RewrittenLayer> {
  const gzip = createGzip({ level: 6, chunkSize: 256 * 1024 });
  const tap = new Sha256Meter();
  const written = pipeline(gzip, tap, createWriteStream(target, { flags: 'wx' }));
  written.catch(() => undefined);
  const put = async (bytes: Buffer): Promise<void> => {
    if (!gzip.write(bytes)) await Promise.race([once(gzip, 'drain'), written]);
  };
  /** Deleted hard-link targets → the kept link their body was written under. */
  const heirs = new Map<string, string>();
  let entries = 0;
  const keep = async (entry: TarEntry, entryPath: string, body: AsyncIterable<Buffer> | undefined, linkTo?: string): Promise<void> => {
    await put(headerOf(entry, entryPath, linkTo));
    entries += 1;
    if (entry.kind !== 'directory') onKept(entryPath);
    if (entry.kind !== 'file' || entry.size === 0) return;
    let copied = 0;
    for await (const chunk of body ?? []) {
      copied += chunk.length;
      await put(chunk);
    }
    if (copied !== entry.size) throw invalidImage(`entry ${JSON.stringify(entryPath)} is shorter than its header says`);
    const padding = (BLOCK - (entry.size % BLOCK)) % BLOCK;
    if (padding > 0) await put(Buffer.alloc(padding));
  };
  try {
    await readTarLayer(file.file, await isGzip(file, index), async (entry, body) => {
      const entryPath = normalizeArchivePath(entry.path);
      if (entryPath === '' || marker(entryPath)) return;
      if (hidden.hides(entryPath)) {
        const heir = entry.kind === 'file' ? scan.links.get(entryPath)?.find((link) => !hidden.hides(link)) : undefined;
        if (heir === undefined) return;
        heirs.set(entryPath, heir);
        return keep(entry, heir, body);
      }
      if (entry.kind === 'hardlink') {
        const linked = normalizeArchivePath(entry.linkTarget ?? '');
        const heir = heirs.get(linked);
        if (heir === entryPath) return;
        if (heir !== undefined) return keep(entry, entryPath, undefined, heir);
        if (hidden.hides(linked)) throw invalidImage(`hard link ${JSON.stringify(entryPath)} points at ${JSON.stringify(linked)}, which an upper layer deletes and this layer does not hold`);
      }
      return keep(entry, entryPath, body);
    });
    await put(Buffer.alloc(2 * BLOCK));
    gzip.end();
    await written;
  } catch (error) {
    gzip.destroy();
    await written.catch(() => undefined);
    throw inLayer(index, error);
  }
  return { file: target, size: tap.bytes, sha256: tap.sha256(), entries };
}
