/**
 * A service's output file, `CONFDIR/logs/service.log`, bounded by size with `keep` older copies
 * (`service.log.1` newest … `service.log.N`). The service writes to the file directly — its
 * stdout and stderr are the file, opened for appending — so it keeps logging while the agent
 * restarts and after it re-adopts the service. Rotation is copy-truncate, done by the agent when
 * it checks the size: the copy is bounded by the size limit, and because the service appends,
 * its next write lands at the start of the truncated file. Lines written between the copy and
 * the truncation can be lost; that window is one copy of at most `maxBytes`.
 */
import { copyFile, mkdir, open, rename, rm, stat, truncate } from 'node:fs/promises';
import path from 'node:path';

/** Default size limit of service.log before it is rotated. */
export const DEFAULT_LOG_MAX_BYTES = 10 * 1024 * 1024;
/** Default number of rotated copies kept. */
export const DEFAULT_LOG_KEEP = 3;

/** Path of a configuration's service log. */
export function serviceLogPath(confDir: string): string {
  return path.join(confDir, 'logs', 'service.log');
}

/** Opens the log for appending and returns its descriptor, to hand to the service as stdout and stderr. */
export async function openServiceLog(confDir: string): Promise<{ fd: number; close: () => Promise<void> }> {
  const file = serviceLogPath(confDir);
  await mkdir(path.dirname(file), { recursive: true, mode: 0o750 });
  const handle = await open(file, 'a', 0o640);
  return { fd: handle.fd, close: () => handle.close() };
}

/** Rotates the log when it is larger than `maxBytes`; true when it did. */
export async function rotateServiceLog(confDir: string, maxBytes = DEFAULT_LOG_MAX_BYTES, keep = DEFAULT_LOG_KEEP): Promise<boolean> {
  const file = serviceLogPath(confDir);
  const size = await stat(file).then((s) => s.size, () => 0);
  if (size <= maxBytes) return false;
  await rm(`${file}.${keep}`, { force: true });
  for (let index = keep - 1; index >= 1; index--) {
    await rename(`${file}.${index}`, `${file}.${index + 1}`).catch(() => undefined);
  }
  if (keep >= 1) await copyFile(file, `${file}.1`);
  await truncate(file, 0);
  return true;
}
