/**
 * Writes entries into a release tree without ever following a symlink. The archive-level rules
 * (entry-rules.ts) judge names lexically; this class judges the real filesystem, because an
 * earlier layer may have put a symlink where a later layer's path goes.
 *
 * Invariants: every path in `#dirs` was seen by lstat (or made by mkdir) as a real directory
 * during this unpack, and anything removed is forgotten at once, so no cached answer outlives
 * what it describes. Files are always created fresh (unlink, then O_CREAT|O_EXCL|O_NOFOLLOW),
 * so a write never lands in an inode that a hard link or symlink shares.
 */
import { closeSync, constants, fchmodSync, futimesSync, lstatSync, mkdirSync, openSync, unlinkSync, writeSync, type Stats } from 'node:fs';
import { chmod, link, lstat, readdir, readlink, symlink } from 'node:fs/promises';
import path from 'node:path';
import { symlinkResolution, unsafeEntry, type PathLookup } from '../../core/archive/entry-rules.ts';
import { inLayer, pathParts } from './layer-entry.ts';
import { removeTree } from './remove-tree.ts';
import { gcPacer } from '../../lib/gc-pacer.ts';

const CREATE_FLAGS = constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW;

/** lstat that answers undefined for a missing path. */
async function lstatOrNone(file: string): Promise<Stats | undefined> {
  try {
    return await lstat(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/**
 * The same, synchronously. The per-entry path (lstat, mkdir, open, write, fchmod, futimes,
 * close) uses synchronous calls on purpose: each is a few microseconds on a local disk, while
 * each awaited call costs a thread-pool round trip, and on releases of tens of thousands of
 * small files those round trips were most of the unpack time. The agent does nothing else
 * latency-sensitive meanwhile, and each call blocks for at most one 64 KiB chunk.
 */
function lstatOrNoneSync(file: string): Stats | undefined {
  try {
    return lstatSync(file);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}

/** The safe writer of one release tree; one instance per `unpackLayers` call. */
export class TreeWriter {
  readonly #root: string;
  readonly #dirs = new Set<string>(['']);
  /**
   * Directories this writer created empty (the root included), and every path it created since.
   * Inside a fresh directory only what this writer made can exist, so a leaf that is not in
   * `#made` needs no lstat to know it is absent: one syscall less per file.
   */
  readonly #fresh = new Set<string>(['']);
  readonly #made = new Set<string>();
  readonly #dirModes = new Map<string, number>();
  /** Symlinks created, with the layer that created them, for the final escape check. */
  readonly #symlinks = new Map<string, string>();
  /** Paths the current layer wrote (and their parents): opaque and plain whiteouts spare them. */
  readonly #touched = new Set<string>();
  #layer = '';

  constructor(root: string) {
    this.#root = root;
  }

  /** Starts the next layer: whiteouts from now on hide only what earlier layers wrote. */
  startLayer(name: string): void {
    this.#layer = name;
    this.#touched.clear();
  }

  /** Creates (or keeps) a directory; its mode is applied in `finish` so unpacking can still write into it. */
  async directory(entry: string, parts: string[], mode: number | undefined): Promise<void> {
    if (parts.length === 0) return; // "./": the release root's mode is the agent's, not the archive's
    await this.#ensureDir(entry, parts.slice(0, -1));
    const rel = parts.join('/');
    const stats = await lstatOrNone(path.join(this.#root, rel));
    // A layer may turn a lower layer's symlink or file into a directory: replace it, never go through it.
    if (stats !== undefined && !stats.isDirectory()) await this.#remove(rel);
    await this.#ensureDir(entry, parts);
    this.#dirModes.set(parts.join('/'), (mode ?? 0o755) & 0o1777);
  }

  /** Writes a regular file from its body stream, setuid/setgid/sticky stripped. */
  async file(entry: string, parts: string[], mode: number | undefined, mtime: Date | undefined, body: AsyncIterable<Buffer>): Promise<number> {
    const abs = await this.#prepareLeaf(entry, parts);
    const fd = openSync(abs, CREATE_FLAGS, 0o600);
    let written = 0;
    try {
      // One chunk at a time: memory stays bounded by the reader's chunk size whatever the file's size.
      for await (const chunk of body) {
        let offset = 0;
        while (offset < chunk.length) offset += writeSync(fd, chunk, offset, chunk.length - offset);
        written += chunk.length;
        gcPacer.streamed(chunk.length);
      }
      fchmodSync(fd, (mode ?? 0o644) & 0o777);
      if (mtime !== undefined && !Number.isNaN(mtime.getTime())) futimesSync(fd, mtime, mtime);
    } finally {
      closeSync(fd);
    }
    return written;
  }

  /** Creates a symlink (its target was checked lexically by the entry rules; chains are checked in `finish`). */
  async symlink(entry: string, parts: string[], target: string): Promise<void> {
    const abs = await this.#prepareLeaf(entry, parts);
    await symlink(target, abs);
    this.#symlinks.set(parts.join('/'), this.#layer);
  }

  /** Hard-links to a regular file already extracted into this tree, reached without symlinks. */
  async hardlink(entry: string, parts: string[], targetParts: string[]): Promise<void> {
    const targetRel = targetParts.join('/');
    if (targetRel === parts.join('/')) throw unsafeEntry(entry, 'hard link points at itself');
    const dirOk = await this.#existingDir(entry, targetParts.slice(0, -1));
    const stats = dirOk ? await lstatOrNone(path.join(this.#root, targetRel)) : undefined;
    if (stats === undefined || !stats.isFile()) {
      throw unsafeEntry(entry, `hard link target ${JSON.stringify(targetRel)} is not a regular file already extracted into the tree`);
    }
    const abs = await this.#prepareLeaf(entry, parts);
    await link(path.join(this.#root, targetRel), abs);
  }

  /**
   * `dir/.wh.NAME`: removes `dir/NAME` left by lower layers; nothing is written. A whiteout hides
   * only lower layers, wherever it sits in its own: when this layer already wrote NAME, or wrote
   * under the directory NAME, what it wrote stays and only lower layers' content under NAME goes.
   */
  async whiteout(entry: string, dirParts: string[], name: string): Promise<void> {
    const rel = [...dirParts, name].join('/');
    if (!this.#touched.has(rel)) {
      if (await this.#existingDir(entry, dirParts)) await this.#remove(rel);
      return;
    }
    if (lstatOrNoneSync(path.join(this.#root, rel))?.isDirectory()) await this.#pruneUntouched(rel);
  }

  /**
   * `dir/.wh..wh..opq`: empties `dir` of everything lower layers put there. Applied when met;
   * what this layer wrote under `dir` before the marker is spared (tracked in `#touched`), so the
   * result does not depend on where in the layer the marker sits. Entries after it are written normally.
   */
  async opaque(entry: string, dirParts: string[]): Promise<void> {
    await this.#ensureDir(entry, dirParts);
    await this.#pruneUntouched(dirParts.join('/'));
  }

  /** Applies final directory modes (deepest first) and checks that no symlink chain leaves the tree. */
  async finish(): Promise<void> {
    for (const [rel, layer] of this.#symlinks) {
      const stats = await lstatOrNone(path.join(this.#root, rel));
      if (stats === undefined || !stats.isSymbolicLink()) continue;
      const target = await readlink(path.join(this.#root, rel));
      if (!(await this.#resolvesInside(pathParts(rel).slice(0, -1), target))) {
        throw inLayer(layer, unsafeEntry(rel, `symlink target ${JSON.stringify(target)} leaves the tree through other symlinks`));
      }
    }
    const dirs = [...this.#dirs].filter((rel) => rel !== '');
    dirs.sort((a, b) => b.split('/').length - a.split('/').length);
    for (const rel of dirs) {
      const abs = path.join(this.#root, rel);
      // Belt and braces: chmod follows symlinks, so confirm the invariant before using it.
      if ((await lstat(abs)).isDirectory()) await chmod(abs, this.#dirModes.get(rel) ?? 0o755);
    }
  }

  /** Makes every component of `parts` a real directory, refusing to go through a symlink. */
  async #ensureDir(entry: string, parts: string[]): Promise<void> {
    let rel = '';
    for (const part of parts) {
      rel = rel === '' ? part : `${rel}/${part}`;
      this.#touched.add(rel);
      if (this.#dirs.has(rel)) continue;
      const abs = path.join(this.#root, rel);
      const stats = lstatOrNoneSync(abs);
      if (stats?.isSymbolicLink()) throw this.#throughSymlink(entry, rel);
      if (stats !== undefined && !stats.isDirectory()) await this.#remove(rel); // a file where a directory now goes
      if (stats === undefined || !stats.isDirectory()) {
        mkdirSync(abs, 0o755);
        this.#fresh.add(rel);
        this.#made.add(rel);
      }
      this.#dirs.add(rel);
    }
  }

  /** True when every component of `parts` is a real directory; throws on a symlink; false when missing. */
  async #existingDir(entry: string, parts: string[]): Promise<boolean> {
    let rel = '';
    for (const part of parts) {
      rel = rel === '' ? part : `${rel}/${part}`;
      if (this.#dirs.has(rel)) continue;
      const stats = await lstatOrNone(path.join(this.#root, rel));
      if (stats?.isSymbolicLink()) throw this.#throughSymlink(entry, rel);
      if (stats === undefined || !stats.isDirectory()) return false;
      this.#dirs.add(rel);
    }
    return true;
  }

  /** Readies the parent and clears whatever is at the leaf, returning the leaf's absolute path. */
  async #prepareLeaf(entry: string, parts: string[]): Promise<string> {
    await this.#ensureDir(entry, parts.slice(0, -1));
    const rel = parts.join('/');
    this.#touched.add(rel);
    if (!this.#fresh.has(parts.slice(0, -1).join('/')) || this.#made.has(rel)) await this.#remove(rel);
    this.#made.add(rel);
    return path.join(this.#root, rel);
  }

  /** Removes whatever is at `rel` (a symlink itself, never its target) and forgets it. */
  async #remove(rel: string): Promise<void> {
    const abs = path.join(this.#root, rel);
    const stats = lstatOrNoneSync(abs);
    if (stats === undefined) return;
    this.#made.delete(rel);
    if (!stats.isDirectory()) {
      unlinkSync(abs);
      this.#symlinks.delete(rel);
      return;
    }
    await removeTree(abs);
    const prefix = `${rel}/`;
    for (const known of [this.#dirs, this.#dirModes, this.#symlinks, this.#fresh, this.#made]) {
      for (const key of known.keys()) if (key === rel || key.startsWith(prefix)) known.delete(key);
    }
  }

  /** Removes the children of `rel` that the current layer did not write, recursing into ones it did. */
  async #pruneUntouched(rel: string): Promise<void> {
    for (const name of await readdir(path.join(this.#root, rel))) {
      const child = rel === '' ? name : `${rel}/${name}`;
      if (!this.#touched.has(child)) {
        await this.#remove(child);
        continue;
      }
      const stats = await lstat(path.join(this.#root, child));
      if (stats.isDirectory()) await this.#pruneUntouched(child);
    }
  }

  /** Resolves `target` from directory `dir` through the tree's real symlinks; false if it leaves the tree. */
  async #resolvesInside(dir: string[], target: string): Promise<boolean> {
    const steps = symlinkResolution(dir, target);
    for (let step = steps.next(); ; ) {
      if (step.done === true) return step.value;
      step = steps.next(await this.#lookup(step.value));
    }
  }

  /** What the tree holds at `parts`, for the shared resolution walk. */
  async #lookup(parts: string[]): Promise<PathLookup> {
    const abs = path.join(this.#root, ...parts);
    const stats = await lstatOrNone(abs);
    if (stats === undefined) return 'missing';
    return stats.isSymbolicLink() ? { symlink: await readlink(abs) } : 'other';
  }

  #throughSymlink(entry: string, rel: string): Error {
    return unsafeEntry(entry, `path goes through the symlink ${JSON.stringify(rel)} already in the tree: nothing is written through a symlink`);
  }
}
