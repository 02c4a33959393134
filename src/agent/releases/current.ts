/**
 * `CONFDIR/current`: a relative symlink to `releases/<id>`, the release that runs. It is replaced
 * by renaming a freshly made symlink over it, which is atomic, so a reader (or a crash) sees the
 * old target or the new one, never a missing or partial link.
 */
import { randomBytes } from 'node:crypto';
import { lstat, readlink, rename, rm, symlink } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../../core/errors.ts';
import { syncDirectory } from '../../lib/atomic-file.ts';
import { assertReleaseId, releasesDir } from './layout.ts';
import { readState, writeState } from './state.ts';

/** Path of a configuration directory's `current` symlink. */
export function currentLink(confDir: string): string {
  return path.join(confDir, 'current');
}

/**
 * Atomically points `current` at `releases/<id>`, which must be a complete (committed) release.
 * Callers beside this module hold the releases lock (`withReleasesLock`), so the release cannot
 * be pruned between the check here and the switch.
 */
export async function switchCurrent(confDir: string, id: string): Promise<void> {
  assertReleaseId(id);
  const release = path.join(releasesDir(confDir), id);
  const stats = await lstat(release).catch(() => undefined);
  if (stats === undefined || !stats.isDirectory()) {
    throw new StrataError('INTERNAL', `cannot switch ${confDir} to release ${id}: ${release} is not a release directory`, { details: { confDir, id } });
  }
  const temp = path.join(confDir, `current.tmp-${randomBytes(6).toString('hex')}`);
  // Relative, so the whole agent directory can be moved or mounted elsewhere.
  await symlink(path.join('releases', id), temp);
  try {
    await rename(temp, currentLink(confDir));
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  await syncDirectory(confDir);
}

/** The id `current` points to, or undefined when there is no current release yet. */
export async function readCurrent(confDir: string): Promise<string | undefined> {
  let target: string;
  try {
    target = await readlink(currentLink(confDir));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  const parent = path.dirname(path.normalize(target));
  return parent === 'releases' || parent === releasesDir(confDir) ? path.basename(target) : undefined;
}

/**
 * Switches `current` back to the release deployed before it (per state.json's history, skipping
 * releases already pruned), with no network and no hook: an emergency lever. Repeated calls walk
 * further back. For a caller that holds the releases lock (see local-rollback.ts), so that no
 * prune can remove the release it picks before `current` points at it.
 */
export async function switchToPrevious(confDir: string): Promise<{ from: string; to: string }> {
  const from = await readCurrent(confDir);
  if (from === undefined) throw new StrataError('NOTHING_TO_ROLL_BACK', `${confDir} has no current release to roll back from`);
  const state = await readState(confDir);
  const history = state?.history ?? [];
  let index = history.findLastIndex((record) => record.id === from);
  if (index < 0) index = history.length;
  for (let i = index - 1; i >= 0; i--) {
    const record = history[i];
    if (record === undefined || record.id === from) continue;
    const stats = await lstat(path.join(releasesDir(confDir), record.id)).catch(() => undefined);
    if (!stats?.isDirectory()) continue;
    await switchCurrent(confDir, record.id);
    if (state !== undefined) await writeState(confDir, { ...state, current: { ...record, deployedAt: new Date().toISOString() } });
    return { from, to: record.id };
  }
  throw new StrataError('NOTHING_TO_ROLL_BACK', `${confDir} keeps no release deployed before ${from}`, { details: { from } });
}
