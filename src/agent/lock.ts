/**
 * One agent per directory: an exclusive flock(2) on `DIR/agent.lock` (see flock.ts), held for the
 * agent's whole life. The kernel drops it when the process ends, however it ends, so there is no
 * moment at which two starting agents both find the directory free, and a restart after kill -9
 * never meets a stale lock. The file also holds the owner's pid, only to name it when a second
 * agent is refused.
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../core/errors.ts';
import { lockFile } from './flock.ts';

/** Takes the directory's lock; resolves to a release function. */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, 'agent.lock');
  const lock = await lockFile(file, 0);
  if (lock === undefined) {
    const owner = (await readFile(file, 'utf8').catch(() => '')).trim();
    const who = /^[1-9]\d*$/.test(owner) ? ` (pid ${owner})` : '';
    throw new StrataError('BAD_REQUEST', `another agent${who} is running on ${dir}; one agent per directory`);
  }
  try {
    await lock.handle.truncate(0);
    await lock.handle.write(`${process.pid}\n`, 0);
  } catch (error) {
    await lock.release();
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await lock.handle.truncate(0).catch(() => undefined);
    await lock.release();
  };
}
