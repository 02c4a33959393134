/**
 * Deterministic packing of a directory into tar.gz: entries in byte order of their relative path,
 * fixed metadata, gzip header without a timestamp, so the same tree always gives the same bytes
 * (and the same blob sha256). The tar is written by hand from node-tar's Header and Pax encoders
 * with synchronous, batched reads: per-file async round trips would cost more than gzip itself on
 * trees of many small files, while zlib compresses one batch in the thread pool as the next is read.
 */
import { closeSync, lstatSync, openSync, readdirSync, readlinkSync, readSync, type Stats } from 'node:fs';
import { join } from 'node:path';
import { pipeline, Readable } from 'node:stream';
import { createGzip } from 'node:zlib';
import { Header, Pax, type HeaderData } from 'tar';
import { StrataError } from '../errors.ts';

/** How to pack: fixed mtime, whether to keep owners and mtimes, gzip level. */
export interface PackOptions {
  /** The mtime every entry gets unless keepMtimes; default 2000-01-01T00:00:00Z. */
  mtime?: Date;
  /** Keep numeric uid/gid (default false: uid/gid 0, no owner names). */
  keepOwners?: boolean;
  /** Keep each entry's mtime, to the second (default false). */
  keepMtimes?: boolean;
  /** gzip level, default 6. */
  level?: number;
  /** Called with the number of file-content bytes just read, for progress bars. */
  onProgress?: (bytes: number) => void;
}

/** One thing to pack, with its sort key (the UTF-8 bytes of its relative path). */
interface TreeEntry {
  relative: string;
  absolute: string;
  key: Buffer;
}

const DEFAULT_MTIME = new Date('2000-01-01T00:00:00Z');
/** Bytes gathered per push: big enough that stream and zlib overhead vanish, small enough to stay responsive. */
const BATCH_BYTES = 1024 * 1024;
const BLOCK = 512;

/** The error for a tree entry that cannot be packed. */
function unpackable(path: string, reason: string): StrataError {
  return new StrataError('UNSAFE_ARCHIVE_ENTRY', `cannot pack ${JSON.stringify(path)}: ${reason}`, { details: { entry: path, reason } });
}

/** What a non-packable directory entry is, for the refusal message. */
function specialName(entry: { isFIFO(): boolean; isSocket(): boolean; isCharacterDevice(): boolean; isBlockDevice(): boolean }): string {
  if (entry.isFIFO()) return 'it is a fifo';
  if (entry.isSocket()) return 'it is a socket';
  if (entry.isCharacterDevice()) return 'it is a character device';
  if (entry.isBlockDevice()) return 'it is a block device';
  return 'it is not a file, directory or symlink';
}

/** Every entry under `dir` (not `dir` itself), sorted by the bytes of the relative path; refuses special files. */
function listTree(dir: string): TreeEntry[] {
  const entries: TreeEntry[] = [];
  const pending = [''];
  for (let relativeDir = pending.pop(); relativeDir !== undefined; relativeDir = pending.pop()) {
    for (const dirent of readdirSync(join(dir, relativeDir), { withFileTypes: true })) {
      const relative = relativeDir === '' ? dirent.name : `${relativeDir}/${dirent.name}`;
      if (dirent.isDirectory()) pending.push(relative);
      else if (!dirent.isFile() && !dirent.isSymbolicLink()) throw unpackable(relative, `${specialName(dirent)}; only files, directories and symlinks can be packed`);
      entries.push({ relative, absolute: join(dir, relative), key: Buffer.from(relative) });
    }
  }
  return entries.sort((a, b) => Buffer.compare(a.key, b.key));
}

/** One entry's tar header block, preceded by a pax header when a path or number does not fit ustar (mtime stays out of pax so bytes stay stable). */
export function encodeTarHeader(data: HeaderData): Buffer {
  const block = Buffer.alloc(BLOCK);
  const needPax = new Header(data).encode(block);
  return needPax ? Buffer.concat([new Pax({ ...data, mtime: undefined }).encode(), block]) : block;
}

/** A Readable of the uncompressed tar: headers and file bodies, gathered into batches. */
class TarSource extends Readable {
  readonly #dir: string;
  readonly #options: PackOptions;
  #entries: TreeEntry[] | undefined;
  #next = 0;
  /** The file whose body is being copied, and how many bytes of it remain. */
  #file: { fd: number; path: string; remaining: number; padding: number } | undefined;
  #ended = false;

  constructor(dir: string, options: PackOptions) {
    super({ highWaterMark: 2 * BATCH_BYTES });
    this.#dir = dir;
    this.#options = options;
  }

  override _read(): void {
    try {
      this.#entries ??= listTree(this.#dir);
      const batch = Buffer.allocUnsafe(BATCH_BYTES);
      const used = this.#fill(batch);
      this.push(batch.subarray(0, used));
      if (this.#ended) this.push(null);
    } catch (error) {
      this.destroy(error as Error);
    }
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    if (this.#file !== undefined) closeSync(this.#file.fd);
    this.#file = undefined;
    callback(error);
  }

  /** Fills `batch` from the current file and the following entries; returns the bytes used. */
  #fill(batch: Buffer): number {
    const entries = this.#entries ?? [];
    let used = 0;
    while (used < batch.length) {
      const file = this.#file;
      if (file !== undefined) {
        used = this.#copyBody(file, batch, used);
        continue;
      }
      const entry = entries[this.#next];
      if (entry === undefined) {
        // Two zero blocks end the archive.
        if (batch.length - used < 2 * BLOCK) break;
        batch.fill(0, used, used + 2 * BLOCK);
        this.#ended = true;
        return used + 2 * BLOCK;
      }
      const header = this.#header(entry);
      if (batch.length - used < header.length) break;
      header.copy(batch, used);
      used += header.length;
      this.#next += 1;
    }
    return used;
  }

  #copyBody(file: { fd: number; path: string; remaining: number; padding: number }, batch: Buffer, used: number): number {
    if (file.remaining > 0) {
      const read = readSync(file.fd, batch, used, Math.min(file.remaining, batch.length - used), null);
      if (read === 0) throw unpackable(file.path, 'the file shrank while it was being packed');
      file.remaining -= read;
      this.#options.onProgress?.(read);
      return used + read;
    }
    const padding = Math.min(file.padding, batch.length - used);
    batch.fill(0, used, used + padding);
    file.padding -= padding;
    if (file.padding === 0) {
      closeSync(file.fd);
      this.#file = undefined;
    }
    return used + padding;
  }

  /** The header block(s) of one entry (a pax header first when a path or number does not fit ustar); opens a file's body. */
  #header(entry: TreeEntry): Buffer {
    const stats = lstatSync(entry.absolute);
    const kind = stats.isDirectory() ? 'Directory' : stats.isSymbolicLink() ? 'SymbolicLink' : stats.isFile() ? 'File' : undefined;
    if (kind === undefined) throw unpackable(entry.relative, 'it changed into a special file while it was being packed');
    const keepOwners = this.#options.keepOwners === true;
    const data = {
      path: kind === 'Directory' ? `${entry.relative}/` : entry.relative,
      mode: stats.mode & 0o7777,
      uid: keepOwners ? stats.uid : 0,
      gid: keepOwners ? stats.gid : 0,
      size: kind === 'File' ? stats.size : 0,
      mtime: this.#mtime(stats),
      type: kind,
      linkpath: kind === 'SymbolicLink' ? readlinkSync(entry.absolute) : '',
      uname: '',
      gname: '',
    } as const;
    const header = encodeTarHeader(data);
    if (kind === 'File' && data.size > 0) {
      this.#file = { fd: openSync(entry.absolute, 'r'), path: entry.relative, remaining: data.size, padding: (BLOCK - (data.size % BLOCK)) % BLOCK };
    }
    return header;
  }

  #mtime(stats: Stats): Date {
    if (this.#options.keepMtimes === true) return new Date(Math.floor(stats.mtimeMs / 1000) * 1000);
    return this.#options.mtime ?? DEFAULT_MTIME;
  }
}

/** The bytes of file content under `dir` (what packing will read), for progress reporting; refuses special files. */
export async function treeSize(dir: string): Promise<number> {
  let total = 0;
  for (const entry of listTree(dir)) {
    const stats = lstatSync(entry.absolute);
    if (stats.isFile()) total += stats.size;
  }
  return total;
}

/** Archives a directory as tar.gz with sorted entries and fixed metadata, so the same tree always gives the same bytes. */
export function packDirectory(dir: string, options: PackOptions = {}): Readable {
  // zlib's gzip header carries mtime 0 and no name, so the compressed bytes are deterministic too.
  const gzip = createGzip({ level: options.level ?? 6, chunkSize: 256 * 1024 });
  return pipeline(new TarSource(dir, options), gzip, () => undefined);
}
