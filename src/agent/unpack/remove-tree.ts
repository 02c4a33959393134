/**
 * Removing a release tree even when the archive made some of its directories read-only (a layer
 * may ship `0555` directories, which `rm -r` as a non-root agent cannot empty).
 */
import { chmod, lstat, readdir, rm } from 'node:fs/promises';
import path from 'node:path';

/** Gives every directory under `dir` (never through a symlink) owner rwx, so its entries can be removed. */
async function makeWritable(dir: string): Promise<void> {
  await chmod(dir, 0o700);
  for (const name of await readdir(dir)) {
    const child = path.join(dir, name);
    const stats = await lstat(child);
    if (stats.isDirectory()) await makeWritable(child);
  }
}

/** Removes `target` and everything under it; a missing target is not an error. */
export async function removeTree(target: string): Promise<void> {
  try {
    await rm(target, { recursive: true, force: true });
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code !== 'EACCES' && code !== 'EPERM') throw error;
    const stats = await lstat(target);
    if (!stats.isDirectory()) throw error;
    await makeWritable(target);
    await rm(target, { recursive: true, force: true });
  }
}
