/**
 * `CONFDIR/releases.lock`: one configuration's `current`, its release directories and state.json
 * change only under this flock (see ../flock.ts) — the agent's switch and state writes, pruning,
 * discarding a release a hook left, and `strata agent rollback`, which is meant to run beside a
 * running agent. Without it a rollback could switch `current` to the very release a prune was
 * removing. The agent's directory lock cannot serve: the agent holds that one for its whole life.
 * Every holder keeps this one for milliseconds (renames, an fsync, a small write), never across a
 * download, a hook or the removal of a tree, and the kernel drops it with a holder that is killed.
 */
import path from 'node:path';
import { StrataError } from '../../core/errors.ts';
import { lockFile } from '../flock.ts';

/** How long the agent waits for the lock; a holder that keeps it this long is stuck. */
export const RELEASES_LOCK_WAIT_MS = 30_000;

/** Runs `work` holding CONFDIR's releases lock, waiting up to `waitMs` for another holder to let go. */
export async function withReleasesLock<T>(confDir: string, work: () => Promise<T>, waitMs = RELEASES_LOCK_WAIT_MS): Promise<T> {
  const lock = await lockFile(path.join(confDir, 'releases.lock'), waitMs, { readOnly: true });
  if (lock === undefined) {
    const seconds = Math.round(waitMs / 100) / 10;
    throw new StrataError('BAD_REQUEST', `the releases of ${confDir} stayed locked by another process (the agent or another \`strata agent rollback\`) for ${seconds} s; try again`, { details: { confDir } });
  }
  try {
    return await work();
  } finally {
    await lock.release();
  }
}
