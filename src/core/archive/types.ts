/**
 * Shared shapes of archive inspection: the formats Strata accepts, the limits an upload must
 * respect, and the summary an accepted archive yields.
 */

/** An archive format Strata accepts as a component version. */
export type ArchiveFormat = 'tar.gz' | 'tar' | 'zip';

/** Limits an archive must respect: entry count and total declared unpacked size in bytes. */
export interface ArchiveLimits {
  maxEntries: number;
  maxUnpackedBytes: number;
}

/** What an accepted archive holds: its format, entry count and total declared unpacked size. */
export interface ArchiveSummary {
  format: ArchiveFormat;
  entries: number;
  unpackedBytes: number;
}
