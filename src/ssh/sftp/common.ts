/**
 * What both SFTP views share: path normalisation against the virtual root, file attributes,
 * `ls -l` lines, and a table of open handles bounded in number.
 */
import path from 'node:path';
import ssh2 from 'ssh2';
import type { Attributes, FileEntry, SFTPWrapper } from 'ssh2';

/** SFTP status codes. */
export const STATUS = ssh2.utils.sftp.STATUS_CODE;
/** SFTP open flags. */
export const OPEN = ssh2.utils.sftp.OPEN_MODE;

/** Most handles one SFTP session may hold open at once. */
export const MAX_OPEN_HANDLES = 16;

const S_IFDIR = 0o040000;
const S_IFREG = 0o100000;

/** A path as the client wrote it, made absolute and normalised against the virtual root `/`. */
export function normalizePath(requested: string): string {
  return path.posix.resolve('/', requested);
}

/** Attributes of a directory. */
export function directoryAttrs(mtime = new Date()): Attributes {
  const seconds = Math.floor(mtime.getTime() / 1000);
  return { mode: S_IFDIR | 0o755, uid: 0, gid: 0, size: 0, atime: seconds, mtime: seconds };
}

/** Attributes of a regular file of `size` bytes, read-only unless `writable`. */
export function fileAttrs(size: number, mtime = new Date(), writable = false): Attributes {
  const seconds = Math.floor(mtime.getTime() / 1000);
  return { mode: S_IFREG | (writable ? 0o644 : 0o444), uid: 0, gid: 0, size, atime: seconds, mtime: seconds };
}

/** A directory entry with an `ls -l` style long name. */
export function entry(filename: string, attrs: Attributes): FileEntry {
  const isDir = (attrs.mode & S_IFDIR) === S_IFDIR;
  const perms = isDir ? 'dr-xr-xr-x' : (attrs.mode & 0o200) ? '-rw-r--r--' : '-r--r--r--';
  const date = new Date(attrs.mtime * 1000).toUTCString().slice(5, 22);
  return { filename, longname: `${perms}    1 0        0        ${String(attrs.size).padStart(12)} ${date} ${filename}`, attrs };
}

/** Answers REALPATH: the normalised path, as a directory entry. */
export function answerRealpath(sftp: SFTPWrapper, reqid: number, requested: string): void {
  const normalized = normalizePath(requested);
  sftp.name(reqid, [{ filename: normalized, longname: normalized, attrs: directoryAttrs() }]);
}

/** Open handles of one session, numbered, at most MAX_OPEN_HANDLES at once. */
export class HandleTable<T> {
  readonly #open = new Map<number, T>();
  #next = 0;

  /** Stores `value` and returns its handle, or undefined when too many are open. */
  add(value: T): Buffer | undefined {
    if (this.#open.size >= MAX_OPEN_HANDLES) return undefined;
    const id = this.#next++;
    this.#open.set(id, value);
    const handle = Buffer.alloc(4);
    handle.writeUInt32BE(id, 0);
    return handle;
  }

  /** The value of a handle, or undefined for an unknown one. */
  get(handle: Buffer): T | undefined {
    return handle.length === 4 ? this.#open.get(handle.readUInt32BE(0)) : undefined;
  }

  /** Forgets a handle and returns its value. */
  take(handle: Buffer): T | undefined {
    const value = this.get(handle);
    if (value !== undefined) this.#open.delete(handle.readUInt32BE(0));
    return value;
  }

  /** Every open value (for cleanup when the session ends). */
  values(): T[] {
    return [...this.#open.values()];
  }
}

/** Answers every request of `events` with PERMISSION_DENIED and `message`. */
export function refuseChanges(sftp: SFTPWrapper, events: readonly string[], message: string): void {
  for (const event of events) {
    sftp.on(event, (reqid: number) => sftp.status(reqid, STATUS.PERMISSION_DENIED, message));
  }
}
