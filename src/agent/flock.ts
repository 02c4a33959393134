/**
 * An exclusive flock(2) on a file, held through an open file description the caller keeps until
 * it lets go. The kernel drops the lock when the description's last descriptor closes — on
 * release, or when the process ends however it ends (kill -9 included) — so there is no stale
 * lock to judge and no recorded pid to trust after a reboot or pid reuse.
 *
 * Node has no flock call, so the `flock` program (util-linux) takes the lock on the caller's own
 * descriptor, passed to it as fd 3: a flock belongs to the open file description, which the caller
 * still holds after `flock` exits. Descriptors Node opens are close-on-exec, so hooks and services
 * never inherit a lock. Lock files are never deleted: deleting a flocked file lets a later process
 * lock a new file while an earlier one still holds the old one.
 */
import { spawn } from 'node:child_process';
import { constants, existsSync } from 'node:fs';
import { open, type FileHandle } from 'node:fs/promises';
import { StrataError } from '../core/errors.ts';

/** Where util-linux installs `flock`; PATH is searched when it is elsewhere. */
const FLOCK = ['/usr/bin/flock', '/bin/flock'].find((candidate) => existsSync(candidate)) ?? 'flock';
/** How long `flock` may take beyond its wait, which it overruns only on a stalled machine. */
const FLOCK_TIMEOUT_MS = 30_000;

/** A held lock: the open file (its holder may write to it) and the one way to let it go. */
export interface FileLock {
  readonly handle: FileHandle;
  /** Closes the file, which drops the lock; idempotent. */
  release(): Promise<void>;
}

/**
 * Locks `file` (never through a symlink), waiting up to `waitMs` for another holder to let go (0:
 * not at all); resolves to the lock, or undefined when it stayed held. A holder that writes to the
 * file creates it 0600; a `readOnly` one creates it 0644 and opens it read-only, which flock(2)
 * needs no more than, so whichever user creates it first (root running `strata agent rollback`,
 * or an agent running as its own user) does not shut the other out.
 */
export async function lockFile(file: string, waitMs: number, options: { readOnly?: boolean } = {}): Promise<FileLock | undefined> {
  const access = options.readOnly === true ? constants.O_RDONLY : constants.O_RDWR;
  const handle = await open(file, access | constants.O_CREAT | constants.O_NOFOLLOW, options.readOnly === true ? 0o644 : 0o600);
  let locked = false;
  try {
    locked = await flockExclusive(handle, file, waitMs);
  } finally {
    if (!locked) await handle.close();
  }
  if (!locked) return undefined;
  let released = false;
  return {
    handle,
    release: async () => {
      if (released) return;
      released = true;
      await handle.close(); // the last descriptor of the open file description: the kernel drops the lock
    },
  };
}

/** Asks `flock` to lock `handle`'s open file description within `waitMs`; false when another holds it. */
function flockExclusive(handle: FileHandle, file: string, waitMs: number): Promise<boolean> {
  const wait = waitMs > 0 ? ['--wait', (waitMs / 1000).toFixed(3)] : ['--nonblock'];
  return new Promise((resolve, reject) => {
    const child = spawn(FLOCK, [...wait, '--exclusive', '3'], { stdio: ['ignore', 'ignore', 'pipe', handle.fd], timeout: waitMs + FLOCK_TIMEOUT_MS });
    let stderr = '';
    child.stderr?.setEncoding('utf8').on('data', (text: string) => {
      if (stderr.length < 4096) stderr += text;
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      const missing = error.code === 'ENOENT';
      reject(new StrataError('INTERNAL', missing ? `cannot lock ${file}: the flock program (util-linux) is not installed` : `cannot lock ${file}: ${error.message}`, { cause: error }));
    });
    child.on('close', (code, signal) => {
      if (code === 0) resolve(true);
      else if (code === 1) resolve(false); // held elsewhere (--nonblock), or still held when --wait ran out
      else reject(new StrataError('INTERNAL', `cannot lock ${file}: flock ended with ${code ?? signal}${stderr.trim() ? `: ${stderr.trim().split('\n')[0]}` : ''}`));
    });
  });
}
