/**
 * The rsync options an agent's config may add to a sync group. The list is an allow-list because
 * rsync has options that run programs (`-e`, `--rsh`, `--rsync-path`), read or write arbitrary
 * files (`--files-from`, `--log-file`, `--write-batch`, `--temp-dir`) or reach outside the group's
 * paths (`--link-dest`, `--backup-dir`); anything not listed here is refused when the config loads.
 */

/** Options taken as they are. `-a` is always passed, so its parts need not be listed. */
const FLAGS = new Set([
  '--delete', '--delete-before', '--delete-during', '--delete-delay', '--delete-after', '--delete-excluded',
  '--checksum', '-c', '--compress', '-z', '--hard-links', '-H', '--acls', '-A', '--xattrs', '-X',
  '--sparse', '--numeric-ids', '--force', '--prune-empty-dirs', '-m', '--omit-dir-times', '-O',
  '--no-perms', '--no-owner', '--no-group', '--no-times', '--inplace', '--partial', '--delay-updates',
  '--update', '-u', '--ignore-existing', '--existing', '--size-only', '--ignore-times', '-I',
  '--whole-file', '-W', '--no-whole-file', '--safe-links', '--copy-unsafe-links', '--one-file-system', '-x',
  '--cvs-exclude', '-C', '--fuzzy', '-y', '--copy-links', '-L',
]);

/** Options that take a value, written `--name=value` in one element, with the value's shape. */
const VALUED: Record<string, RegExp> = {
  '--bwlimit': /^\d+(\.\d+)?[KMGkmg]?$/,
  '--timeout': /^\d+$/,
  '--contimeout': /^\d+$/,
  '--max-delete': /^\d+$/,
  '--max-size': /^\d+(\.\d+)?[KMGkmg]?[Bb]?$/,
  '--min-size': /^\d+(\.\d+)?[KMGkmg]?[Bb]?$/,
  '--modify-window': /^-?\d+$/,
  '--compress-level': /^\d$/,
  '--chmod': /^[ugoaDF]*[-+=][rwxXst0-7]*(,[ugoaDF]*[-+=][rwxXst0-7]*)*$/,
  '--skip-compress': /^[A-Za-z0-9/]+$/,
};

/** Why `option` may not be passed to rsync, or undefined when it may. */
export function rsyncOptionProblem(option: string): string | undefined {
  if (FLAGS.has(option)) return undefined;
  const at = option.indexOf('=');
  const name = at < 0 ? option : option.slice(0, at);
  const shape = VALUED[name];
  if (shape === undefined) return `rsync option ${JSON.stringify(option)} is not in the allow-list of safe options`;
  if (at < 0) return `rsync option ${name} needs its value in the same element, like ${name}=VALUE`;
  if (!shape.test(option.slice(at + 1))) return `rsync option ${JSON.stringify(option)} has an invalid value`;
  return undefined;
}
