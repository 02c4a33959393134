/**
 * One agent per directory: an exclusive flock(2) on `DIR/agent.lock`, held through an open file
 * description the agent keeps for its whole life. The kernel drops the lock when the process
 * ends, however it ends (kill -9 included), so there is no stale lock to judge, no recorded pid to
 * trust after a reboot or pid reuse, and no moment at which two starting agents both find the
 * directory free.
 *
 * Node has no flock call, so the `flock` program (util-linux) takes the lock on the agent's own
 * descriptor, passed to it as fd 3: a flock belongs to the open file description, which the agent
 * still holds after `flock` exits. Descriptors Node opens are close-on-exec, so hooks and services
 * the agent starts never inherit the lock. The file also holds the owner's pid, only to name it
 * when a second agent is refused; it is never deleted, because deleting a flocked file lets a
 * later agent lock a new file while an earlier one still holds the old one.
 */
import { spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { open, readFile, type FileHandle } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../core/errors.ts';

/** Where util-linux installs `flock`; PATH is searched when it is elsewhere. */
const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((candidate) => existsSync(candidate)) ?? 'flock';
/** Longest wait for `flock -n`, which answers at once unless the machine is stalled. */
const FLOCK_TIMEOUT_MS = 30_000;

/** Takes the directory's lock; resolves to a release function. */
export async function lockDirectory(dir: string): Promise<() => Promise<void>> {
  const file = path.join(dir, 'agent.lock');
  const handle = await open(file, constants.O_RDWR | constants.O_CREAT | constants.O_NOFOLLOW, 0o600);
  try {
    if (!(await flockExclusive(handle, dir))) {
      const owner = (await readFile(file, 'utf8').catch(() => '')).trim();
      const who = /^[1-9]\d*$/.test(owner) ? ` (pid ${owner})` : '';
      throw new StrataError('BAD_REQUEST', `another agent${who} is running on ${dir}; one agent per directory`);
    }
    await handle.truncate(0);
    await handle.write(`${process.pid}\n`, 0);
  } catch (error) {
    await handle.close();
    throw error;
  }
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await handle.truncate(0).catch(() => undefined);
    await handle.close(); // the last descriptor of the open file description: the kernel drops the lock
  };
}

/** Asks `flock -n` to lock `handle`'s open file description; false when another holds it. */
function flockExclusive(handle: FileHandle, dir: string): Promise<boolean> {
  return new Promise((resolve, reject) => {
    const child = spawn(FLOCK, ['--nonblock', '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', handle.fd], timeout: FLOCK_TIMEOUT_MS });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 4096) stderr += text;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      const missing = error.code === 'ENOENT';
      reject(new StrataError('INTERNAL', missing ? `cannot lock ${dir}: the flock program (util-linux) is not installed` : `cannot lock ${dir}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve(true);
      else if (code === 1) resolve(false); // -n: the lock is held elsewhere
      else reject(new StrataError('INTERNAL', `cannot lock ${dir}: flock ended with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`));
    });
  });
}
