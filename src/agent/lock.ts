/**
 * One agent per directory: `DIR/agent.lock` holds the owner's pid. A second agent on the same
 * directory is refused; a lock left by a process that no longer exists (kill -9) is taken over.
 */
import { open, readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../core/errors.ts';

/** True when a process with this pid exists. */
function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Takes the directory's lock; resolves to a release function. */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, 'agent.lock');
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const handle = await open(file, 'wx', 0o600);
      await handle.writeFile(`${process.pid}\n`);
      await handle.sync();
      await handle.close();
      return async () => {
        const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
        if (owner === process.pid) await rm(file, { force: true });
      };
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
      const owner = Number((await readFile(file, 'utf8').catch(() => '')).trim());
      if (Number.isInteger(owner) && owner > 0 && owner !== process.pid && alive(owner)) {
        throw new StrataError('BAD_REQUEST', `another agent (pid ${owner}) is running on ${dir}; one agent per directory`);
      }
      // The owner died without cleaning up: its lock is stale.
      await rm(file, { force: true });
    }
  }
  throw new StrataError('BAD_REQUEST', `could not lock ${dir}`);
}
