/**
 * The safe-entry rules every archive format shares: no absolute paths, no `..`, no links leaving
 * the tree, no special files, nothing written through a symlink, no path or link target longer
 * than Linux allows, entry-count and size limits, and bounded work for the symlink checks.
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

/** Longest entry path or link target accepted, in bytes (Linux's PATH_MAX). */
export const MAX_PATH_BYTES = 4096;

/** Longest component of a path or link target accepted, in bytes (Linux's NAME_MAX). */
export const MAX_NAME_BYTES = 255;

/**
 * Most memory the checker keeps for an archive's symlinks, counted as the bytes of their paths
 * and targets plus SYMLINK_NODE_BYTES for each path component it indexes. Real trees stay far
 * below it (a node_modules `.bin` link costs about 200); it stops an archive of many long links.
 */
export const MAX_SYMLINK_BYTES = 64 * 1024 * 1024;

/** What one indexed path component costs in memory, roughly (an object, a Map entry, its key). */
const SYMLINK_NODE_BYTES = 128;

/**
 * Paths `finish` may look up in all. A chain of 40 links with 4 KiB targets takes some 30,000
 * lookups, and an archive of many links into such a chain would take hours to check. A real
 * link takes a handful, so this allows half a million links (about what MAX_SYMLINK_BYTES lets
 * an archive keep) at 16 each, and about a second of checking.
 */
export const MAX_RESOLUTION_STEPS = 8 * 1024 * 1024;

/** Characters of an entry name an error message shows; longer names are cut, so errors stay one short line. */
const SHOWN_NAME_CHARS = 256;

/** The error for an entry that breaks a safety rule, naming the entry and the rule. */
export function unsafeEntry(entry: string, reason: string): StrataError {
  const shown = entry.length > SHOWN_NAME_CHARS ? `${entry.slice(0, SHOWN_NAME_CHARS)}…` : entry;
  return new StrataError('UNSAFE_ARCHIVE_ENTRY', `unsafe archive entry ${JSON.stringify(shown)}: ${reason}`, {
    details: { entry: shown, reason },
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

/** Refuses a path or link target longer than Linux's PATH_MAX, or with a component longer than NAME_MAX. */
function checkLength(entry: string, path: string, what: string): void {
  if (Buffer.byteLength(path) > MAX_PATH_BYTES) throw unsafeEntry(entry, `${what} is longer than ${MAX_PATH_BYTES} bytes`);
  for (const part of path.split('/')) {
    // A UTF-16 code unit is at most 3 bytes of UTF-8: most components need no byte count.
    if (part.length * 3 > MAX_NAME_BYTES && Buffer.byteLength(part) > MAX_NAME_BYTES) {
      throw unsafeEntry(entry, `${what} has a component longer than ${MAX_NAME_BYTES} bytes`);
    }
  }
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
 *
 * The path yielded is the walk's own stack of components, not a copy: read it before resuming.
 * From one yield to the next only its end changes (components popped, then one pushed), so a
 * step costs the walk constant time, and a caller that keeps per-component state can match it:
 * a target of n components then costs time in proportion to n, not n².
 */
export function* symlinkResolution(dir: string[], target: string): Generator<string[], boolean, PathLookup> {
  if (target.startsWith('/')) return false;
  const stack = [...dir];
  // The components still to walk, next one last: taking one, or splicing in a link's target, costs only what it adds.
  const pending = components(target).reverse();
  let hops = 0;
  let lexical = false;
  for (let part = pending.pop(); part !== undefined; part = pending.pop()) {
    if (part === '..') {
      if (stack.length === 0) return false;
      stack.pop();
      continue;
    }
    stack.push(part);
    if (lexical) continue;
    const found: PathLookup = yield stack;
    if (found === 'missing') lexical = true;
    else if (found !== 'other') {
      hops += 1;
      if (hops > MAX_SYMLINK_HOPS || found.symlink.startsWith('/')) return false;
      stack.pop();
      for (const linked of components(found.symlink).reverse()) pending.push(linked);
    }
  }
  return true;
}

/** The archive's symlinks by path component: the target of a symlink at this path, if any, and the paths below it. */
interface SymlinkNode {
  target?: string;
  children?: Map<string, SymlinkNode>;
}

/**
 * Checks the entries of one archive in order. Holds only counters and the archive's symlinks,
 * so memory stays bounded by `maxEntries` and MAX_SYMLINK_BYTES.
 */
export class EntryChecker {
  readonly #limits: ArchiveLimits;
  /** The archive's symlinks, path to target, in archive order for `finish`. */
  readonly #symlinks = new Map<string, string>();
  /** The same symlinks by component, so that a lookup costs the length of the path looked up, not its square. */
  readonly #symlinkTree: SymlinkNode = {};
  #symlinkBytes = 0;
  #resolutionSteps = 0;
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
    checkLength(name, name, 'path');
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
      if (!this.#resolvesInside(path, components(path).slice(0, -1), target)) {
        throw unsafeEntry(path, `symlink target ${JSON.stringify(target)} leaves the tree through other symlinks of the archive`);
      }
    }
  }

  #checkSymlink(name: string, parts: string[], target: string): void {
    if (target === '') throw unsafeEntry(name, 'symlink has an empty target');
    checkLength(name, target, 'symlink target');
    if (target.includes('\0')) throw unsafeEntry(name, 'symlink target contains a NUL byte');
    if (target.startsWith('/')) throw unsafeEntry(name, `symlink target ${JSON.stringify(target)} is absolute`);
    let depth = parts.length - 1;
    for (const part of components(target)) {
      depth += part === '..' ? -1 : 1;
      if (depth < 0) throw unsafeEntry(name, `symlink target ${JSON.stringify(target)} leaves the tree`);
    }
    this.#remember(name, parts, target);
  }

  /** Keeps a symlink for the checks of later entries and `finish`, within MAX_SYMLINK_BYTES. */
  #remember(name: string, parts: string[], target: string): void {
    const path = parts.join('/');
    let node = this.#symlinkTree;
    let known = 0;
    while (known < parts.length) {
      const child = node.children?.get(parts[known] ?? '');
      if (child === undefined) break;
      node = child;
      known += 1;
    }
    this.#symlinkBytes += Buffer.byteLength(path) + Buffer.byteLength(target) + (parts.length - known) * SYMLINK_NODE_BYTES;
    if (this.#symlinkBytes > MAX_SYMLINK_BYTES) {
      throw unsafeEntry(name, `the archive's symlinks need more than ${MAX_SYMLINK_BYTES} bytes of memory to check (too many, or too long)`);
    }
    for (const part of parts.slice(known)) {
      const child: SymlinkNode = {};
      (node.children ??= new Map()).set(part, child);
      node = child;
    }
    node.target = target;
    this.#symlinks.set(path, target);
  }

  #checkHardLink(name: string, target: string): void {
    checkLength(name, target, 'hard link target');
    const parts = safeComponents(name, target, `hard link target ${JSON.stringify(target)}`);
    if (parts.length === 0) throw unsafeEntry(name, 'hard link has an empty target');
    const through = this.#symlinkPrefix(parts);
    if (through !== undefined) {
      throw unsafeEntry(name, `hard link target ${JSON.stringify(target)} goes through the symlink ${JSON.stringify(through)}`);
    }
  }

  /** The first proper prefix of `parts` that is a symlink of this archive, if any. */
  #symlinkPrefix(parts: string[]): string | undefined {
    let node: SymlinkNode | undefined = this.#symlinkTree;
    for (let i = 0; i < parts.length - 1; i++) {
      node = node.children?.get(parts[i] ?? '');
      if (node === undefined) return undefined;
      if (node.target !== undefined) return parts.slice(0, i + 1).join('/');
    }
    return undefined;
  }

  /** Resolves symlink `name`'s `target` from directory `dir`, following the archive's symlinks; false if it leaves the tree. */
  #resolvesInside(name: string, dir: string[], target: string): boolean {
    const steps = symlinkResolution(dir, target);
    // nodes[i] is the tree's node for the walk's first i components (undefined when no symlink lies
    // there or below). A step changes only the walk's last component, so each looks up one node.
    const nodes: (SymlinkNode | undefined)[] = [this.#symlinkTree];
    for (let step = steps.next(); ; ) {
      if (step.done === true) return step.value;
      this.#resolutionSteps += 1;
      if (this.#resolutionSteps > MAX_RESOLUTION_STEPS) {
        throw unsafeEntry(name, `the archive's symlinks take more than ${MAX_RESOLUTION_STEPS} steps to resolve (long chains of long links)`);
      }
      const stack = step.value;
      nodes.length = Math.min(nodes.length, stack.length);
      while (nodes.length <= stack.length) nodes.push(nodes.at(-1)?.children?.get(stack[nodes.length - 1] ?? ''));
      const link = nodes.at(-1)?.target;
      step = steps.next(link === undefined ? 'other' : { symlink: link });
    }
  }
}
