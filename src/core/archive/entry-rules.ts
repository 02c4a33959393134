/**
 * The safe-entry rules every archive format shares: no absolute paths, no `..`, no links leaving
 * the tree, no special files, nothing written through a symlink, entry-count and size limits.
 * The unpacker enforces them again; refusing at upload time gives the operator an early, clear error.
 */
import { StrataError } from '../errors.ts';
import type { ArchiveLimits } from './types.ts';

/** What an archive entry is, reduced to what the rules care about. */
export type EntryKind = 'file' | 'directory' | 'symlink' | 'hardlink' | 'other';

/** One archive entry as the rules see it; `typeName` names an `other` entry ("fifo", "character device"). */
export interface ArchiveEntry {
  path: string;
  kind: EntryKind;
  size: number;
  linkTarget?: string;
  typeName?: string;
}

/** Symlink hops followed before a chain counts as a loop (the Linux limit). */
const MAX_SYMLINK_HOPS = 40;

/** The error for an entry that breaks a safety rule, naming the entry and the rule. */
export function unsafeEntry(entry: string, reason: string): StrataError {
  return new StrataError('UNSAFE_ARCHIVE_ENTRY', `unsafe archive entry ${JSON.stringify(entry)}: ${reason}`, {
    details: { entry, reason },
  });
}

/** The error for bytes that are not a complete archive of a supported format. */
export function invalidArchive(reason: string, cause?: unknown): StrataError {
  return new StrataError('INVALID_ARCHIVE', reason, { details: { reason }, cause });
}

/** Splits a path on `/`, dropping empty and `.` components. */
function components(path: string): string[] {
  return path.split('/').filter((part) => part !== '' && part !== '.');
}

/** Components of a path that must stay in the tree, or throws the rule it breaks. */
function safeComponents(entry: string, path: string, what: string): string[] {
  if (path.includes('\0')) throw unsafeEntry(entry, `${what} contains a NUL byte`);
  if (path.startsWith('/')) throw unsafeEntry(entry, `${what} is absolute`);
  const parts = components(path);
  if (parts.includes('..')) throw unsafeEntry(entry, `${what} escapes the tree with ".."`);
  return parts;
}

/** What a resolver finds at a path: a symlink and its target, something else, or nothing at all. */
export type PathLookup = { symlink: string } | 'other' | 'missing';

/**
 * Resolves symlink `target` from directory `dir` (both relative to a tree's root), true if it
 * stays inside the tree. Yields each path it reaches and takes back what the caller finds there
 * (the archive's own symlinks at upload time, the real tree when unpacking), so the same walk
 * serves a synchronous and an asynchronous caller. Past a missing path nothing more is looked up:
 * the rest resolves lexically. An absolute target, or a chain longer than the Linux limit, leaves.
 */
export function* symlinkResolution(dir: string[], target: string): Generator<string[], boolean, PathLookup> {
  if (target.startsWith('/')) return false;
  const stack = [...dir];
  let pending = components(target);
  let hops = 0;
  let lexical = false;
  while (pending.length > 0) {
    const part = pending.shift() ?? '';
    if (part === '..') {
      if (stack.length === 0) return false;
      stack.pop();
      continue;
    }
    stack.push(part);
    if (lexical) continue;
    const found: PathLookup = yield [...stack];
    if (found === 'missing') lexical = true;
    else if (found !== 'other') {
      hops += 1;
      if (hops > MAX_SYMLINK_HOPS || found.symlink.startsWith('/')) return false;
      stack.pop();
      pending = [...components(found.symlink), ...pending];
    }
  }
  return true;
}

/**
 * Checks the entries of one archive in order. Holds only counters and the archive's symlinks,
 * so memory stays bounded by `maxEntries`.
 */
export class EntryChecker {
  readonly #limits: ArchiveLimits;
  readonly #symlinks = new Map<string, string>();
  #entries = 0;
  #bytes = 0;

  constructor(limits: ArchiveLimits) {
    this.#limits = limits;
  }

  /** Entries accepted so far. */
  get entries(): number {
    return this.#entries;
  }

  /** Declared unpacked bytes accepted so far. */
  get unpackedBytes(): number {
    return this.#bytes;
  }

  /** Accepts the next entry or throws UNSAFE_ARCHIVE_ENTRY naming it and the broken rule. */
  check(entry: ArchiveEntry): void {
    const name = entry.path;
    if (this.#entries + 1 > this.#limits.maxEntries) {
      throw unsafeEntry(name, `archive has more than ${this.#limits.maxEntries} entries`);
    }
    if (this.#bytes + entry.size > this.#limits.maxUnpackedBytes) {
      throw unsafeEntry(name, `archive unpacks to more than ${this.#limits.maxUnpackedBytes} bytes`);
    }
    const parts = safeComponents(name, name, 'path');
    if (entry.kind === 'other') {
      throw unsafeEntry(name, `${entry.typeName ?? 'special file'} entries are not allowed (only files, directories and links)`);
    }
    if (parts.length === 0 && entry.kind !== 'directory') throw unsafeEntry(name, 'path is empty');
    const through = this.#symlinkPrefix(parts);
    if (through !== undefined) {
      throw unsafeEntry(name, `path goes through the symlink ${JSON.stringify(through)}: nothing is written through a symlink`);
    }
    if (entry.kind === 'symlink') this.#checkSymlink(name, parts, entry.linkTarget ?? '');
    if (entry.kind === 'hardlink') this.#checkHardLink(name, entry.linkTarget ?? '');
    this.#entries += 1;
    this.#bytes += entry.size;
  }

  /**
   * Checks, once every entry is known, that no symlink escapes through a chain of the archive's
   * own symlinks (`a/b -> ..` then `c -> a/b/..` looks inside the tree lexically but is not).
   */
  finish(): void {
    for (const [path, target] of this.#symlinks) {
      if (!this.#resolvesInside(components(path).slice(0, -1), target)) {
        throw unsafeEntry(path, `symlink target ${JSON.stringify(target)} leaves the tree through other symlinks of the archive`);
      }
    }
  }

  #checkSymlink(name: string, parts: string[], target: string): void {
    if (target === '') throw unsafeEntry(name, 'symlink has an empty target');
    if (target.includes('\0')) throw unsafeEntry(name, 'symlink target contains a NUL byte');
    if (target.startsWith('/')) throw unsafeEntry(name, `symlink target ${JSON.stringify(target)} is absolute`);
    let depth = parts.length - 1;
    for (const part of components(target)) {
      depth += part === '..' ? -1 : 1;
      if (depth < 0) throw unsafeEntry(name, `symlink target ${JSON.stringify(target)} leaves the tree`);
    }
    this.#symlinks.set(parts.join('/'), target);
  }

  #checkHardLink(name: string, target: string): void {
    const parts = safeComponents(name, target, `hard link target ${JSON.stringify(target)}`);
    if (parts.length === 0) throw unsafeEntry(name, 'hard link has an empty target');
    const through = this.#symlinkPrefix(parts);
    if (through !== undefined) {
      throw unsafeEntry(name, `hard link target ${JSON.stringify(target)} goes through the symlink ${JSON.stringify(through)}`);
    }
  }

  /** The first proper prefix of `parts` that is a symlink of this archive, if any. */
  #symlinkPrefix(parts: string[]): string | undefined {
    if (this.#symlinks.size === 0) return undefined;
    let prefix = '';
    for (let i = 0; i < parts.length - 1; i++) {
      prefix = i === 0 ? (parts[i] ?? '') : `${prefix}/${parts[i] ?? ''}`;
      if (this.#symlinks.has(prefix)) return prefix;
    }
    return undefined;
  }

  /** Resolves `target` from directory `dir`, following the archive's symlinks; false if it leaves the tree. */
  #resolvesInside(dir: string[], target: string): boolean {
    const steps = symlinkResolution(dir, target);
    for (let step = steps.next(); ; ) {
      if (step.done === true) return step.value;
      const link = this.#symlinks.get(step.value.join('/'));
      step = steps.next(link === undefined ? 'other' : { symlink: link });
    }
  }
}
