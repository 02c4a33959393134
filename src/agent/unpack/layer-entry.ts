/**
 * The shape every layer reader (tar, zip) hands to the unpacker: one entry in archive order, with
 * its body as a stream of chunks for regular files. Also the error helpers that name the layer.
 */
import { StrataError, isStrataError } from '../../core/errors.ts';
import type { ArchiveEntry } from '../../core/archive/entry-rules.ts';

/** One archive entry as read from a layer: the safety rules' view plus what writing it needs. */
export interface LayerEntry extends ArchiveEntry {
  /** Unix permission bits as the archive records them (type bits removed), if it records any. */
  mode?: number;
  mtime?: Date;
}

/** Receives each entry in order; `body` is given for regular files and must be consumed or ignored. */
export type EntrySink = (entry: LayerEntry, body: AsyncIterable<Buffer> | undefined) => Promise<void>;

/** Splits an archive path on `/`, dropping empty and `.` components (as the upload-time rules do). */
export function pathParts(entryPath: string): string[] {
  return entryPath.split('/').filter((part) => part !== '' && part !== '.');
}

/** Prefixes an archive error with the layer it came from, so a report names both layer and entry. */
export function inLayer(layer: string, error: unknown): unknown {
  if (!isStrataError(error, 'UNSAFE_ARCHIVE_ENTRY') && !isStrataError(error, 'INVALID_ARCHIVE')) return error;
  if (error.details?.['layer'] !== undefined) return error;
  return new StrataError(error.code, `layer ${JSON.stringify(layer)}: ${error.message}`, {
    details: { ...error.details, layer },
    cause: error,
  });
}

/** True for the errno codes that mean the disk (or the agent's quota) is full. */
export function isNoSpace(error: unknown): boolean {
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT';
}
