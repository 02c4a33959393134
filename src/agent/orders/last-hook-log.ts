/**
 * `CONFDIR/last-hook.log`: the bounded output tail of the last hook run of a configuration,
 * written by the deploy loop and read back by the `logs` order (`source: 'hook'`).
 */
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.ts';

/** Path of a configuration directory's last hook output. */
export function lastHookLogPath(confDir: string): string {
  return path.join(confDir, 'last-hook.log');
}

/** Records a hook run's output tail (already bounded by the hook runner). */
export async function writeLastHookLog(confDir: string, output: string): Promise<void> {
  await writeFileAtomic(lastHookLogPath(confDir), output, 0o600);
}

/** The last hook output of a configuration, or undefined when no hook ran yet. */
export async function readLastHookLog(confDir: string): Promise<string | undefined> {
  try {
    return await readFile(lastHookLogPath(confDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
}
