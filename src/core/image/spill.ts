/**
 * Reads an image archive (a `docker save` tar, optionally gzipped) from a stream into a temporary
 * directory. Both layouts may put their manifest last, so nothing can be decided while the bytes
 * arrive: every regular file is written to disk (hashed on the way, memory stays bounded) and
 * its archive path remembered, along with the archive's symlinks and hard links, which Docker
 * uses to point legacy `<id>/layer.tar` paths at `blobs/sha256/…`.
 */
import { createHash } from 'node:crypto';
import { once } from 'node:events';
import { createWriteStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { EntryChecker } from '../archive/entry-rules.ts';
import { peekStream } from '../../lib/peek-stream.ts';
import { readTarLayer } from '../archive/tar-reader.ts';
import { isStrataError, StrataError } from '../errors.ts';
import { imageTooLarge, invalidImage, type ImageLimits } from './types.ts';

/** A regular file of the archive, stored in the temp directory. */
export interface SpilledFile {
  file: string;
  size: number;
  sha256: string;
}

/** Symlink hops followed when resolving an archive path, as Linux does. */
const MAX_HOPS = 40;

/** An archive path as `a/b/c`: no leading `./` or `/`, no trailing `/`, no empty parts. */
export function normalizeArchivePath(entryPath: string): string {
  return entryPath.split('/').filter((part) => part !== '' && part !== '.').join('/');
}

/** The image archive's files on disk, looked up by archive path. */
export class SpilledArchive {
  readonly dir: string;
  readonly #files = new Map<string, SpilledFile>();
  readonly #symlinks = new Map<string, string>();

  constructor(dir: string) {
    this.dir = dir;
  }

  /** Records a stored file under its archive path. */
  addFile(entryPath: string, file: SpilledFile): void {
    this.#files.set(normalizeArchivePath(entryPath), file);
  }

  /** Records a symlink; its target is resolved against the link's directory when looked up. */
  addSymlink(entryPath: string, target: string): void {
    const link = normalizeArchivePath(entryPath);
    this.#symlinks.set(link, path.posix.join(path.posix.dirname(link), target));
  }

  /** Records a hard link to a file seen earlier; false when the target is not a stored file. */
  addHardLink(entryPath: string, target: string): boolean {
    const found = this.get(target);
    if (found) this.#files.set(normalizeArchivePath(entryPath), found);
    return found !== undefined;
  }

  /** The stored file at an archive path, following the archive's symlinks; undefined when absent. */
  get(entryPath: string): SpilledFile | undefined {
    let current = normalizeArchivePath(entryPath);
    for (let hop = 0; hop <= MAX_HOPS; hop++) {
      const file = this.#files.get(current);
      if (file) return file;
      const target = this.#symlinks.get(current);
      if (target === undefined || target.startsWith('..')) return undefined;
      current = normalizeArchivePath(target);
    }
    return undefined;
  }

  /** True when the archive has a regular file (or a link to one) at this path. */
  has(entryPath: string): boolean {
    return this.get(entryPath) !== undefined;
  }

  /** Parses a JSON document of the archive, refusing a missing, oversized or malformed one. */
  async readJson(entryPath: string, limits: Pick<ImageLimits, 'maxManifestBytes'>, what: string): Promise<unknown> {
    const found = this.get(entryPath);
    if (!found) throw invalidImage(`${what} ${JSON.stringify(entryPath)} is not in the archive`, { path: entryPath });
    return readJsonFile(found, entryPath, limits, what);
  }
}

/** Parses a stored JSON document, refusing an oversized or malformed one; `entryPath` names it in errors. */
export async function readJsonFile(found: SpilledFile, entryPath: string, limits: Pick<ImageLimits, 'maxManifestBytes'>, what: string): Promise<unknown> {
  if (found.size > limits.maxManifestBytes) {
    throw imageTooLarge(`${what} ${JSON.stringify(entryPath)} is ${found.size} bytes, over the limit of ${limits.maxManifestBytes}`, 'maxManifestBytes', found.size);
  }
  const text = await readFile(found.file, 'utf8');
  try {
    return JSON.parse(text);
  } catch (error) {
    throw invalidImage(`${what} ${JSON.stringify(entryPath)} is not valid JSON: ${(error as Error).message}`, { path: entryPath });
  }
}

/** Reads the first bytes of a stream; returns whether it is gzip and a stream of all its bytes again. */
async function peekGzip(source: Readable): Promise<{ gzip: boolean; stream: Readable }> {
  const { head, stream } = await peekStream(source, 2);
  if (head.length === 0) throw invalidImage('not an image archive: the input is empty (pipe `docker save IMAGE` into it)');
  return { gzip: head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b, stream };
}

/** Writes one entry body to `file`, returning its size and sha256. */
async function writeBody(body: AsyncIterable<Buffer>, file: string): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const out = createWriteStream(file, { flags: 'wx' });
  let size = 0;
  try {
    for await (const chunk of body) {
      size += chunk.length;
      hash.update(chunk);
      if (!out.write(chunk)) await once(out, 'drain');
    }
    out.end();
    await once(out, 'finish');
  } catch (error) {
    out.destroy();
    throw error;
  }
  return { size, sha256: hash.digest('hex') };
}

/** Reads the image archive from `source` into `dir` (which exists and is empty). */
export async function spillArchive(source: Readable, dir: string, limits: ImageLimits): Promise<SpilledArchive> {
  const archive = new SpilledArchive(dir);
  const checker = new EntryChecker({ maxEntries: Number.MAX_SAFE_INTEGER, maxUnpackedBytes: Number.MAX_SAFE_INTEGER });
  const { gzip, stream } = await peekGzip(source);
  let entries = 0;
  let bytes = 0;
  try {
    await readTarLayer(stream, gzip, async (entry, body) => {
      entries += 1;
      if (entries > limits.maxArchiveEntries) {
        throw imageTooLarge(`the image archive has more than ${limits.maxArchiveEntries} entries`, 'maxArchiveEntries', entries);
      }
      checker.check(entry);
      if (entry.kind === 'symlink') archive.addSymlink(entry.path, entry.linkTarget ?? '');
      else if (entry.kind === 'hardlink') {
        if (!archive.addHardLink(entry.path, entry.linkTarget ?? '')) {
          throw invalidImage(`image archive entry ${JSON.stringify(entry.path)} is a hard link to ${JSON.stringify(entry.linkTarget)}, which is not a file before it`);
        }
      } else if (entry.kind === 'file' && body) {
        // The parser delivers exactly the declared size, so checking it first bounds what reaches the disk.
        bytes += entry.size;
        if (bytes > limits.maxArchiveBytes) throw imageTooLarge(`the image archive is larger than the limit of ${limits.maxArchiveBytes} bytes`, 'maxArchiveBytes', bytes);
        const file = path.join(dir, String(entries));
        archive.addFile(entry.path, { file, ...(await writeBody(body, file)) });
      }
    });
  } catch (error) {
    if (isStrataError(error, 'INVALID_ARCHIVE')) {
      throw new StrataError('INVALID_IMAGE', `not an image archive: ${error.message}`, { details: { reason: error.message }, cause: error });
    }
    throw error;
  }
  return archive;
}
