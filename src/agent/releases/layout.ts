/**
 * Where things live in a configuration directory (CONFDIR = DIR/<config name>/):
 * `releases/<id>/` complete releases, `releases/.tmp-*` unfinished or doomed ones,
 * `current` → `releases/<id>`, `state.json`, and `releases.lock`, under which they change
 * (releases-lock.ts).
 */
import path from 'node:path';
import { StrataError } from '../../core/errors.ts';

/** Prefix of unfinished (or being-removed) release directories; any left over are crash debris. */
export const TEMP_PREFIX = '.tmp-';

/** The releases directory of a configuration directory. */
export function releasesDir(confDir: string): string {
  return path.join(confDir, 'releases');
}

/** Whether `id` can name a release directory (no separators, no dot names, not a temp name). */
export function isReleaseId(id: string): boolean {
  return /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id);
}

/** Throws unless `id` can name a release directory. */
export function assertReleaseId(id: string): void {
  if (!isReleaseId(id)) {
    throw new StrataError('BAD_REQUEST', `${JSON.stringify(id)} cannot name a release directory`, { details: { id } });
  }
}
