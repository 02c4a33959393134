/**
 * A local rollback's hold: `strata agent rollback` switches `current` back without the network
 * and records the desired id it turned away from, so the agent does not roll forward to it again.
 * Another desired id releases the hold: the agent removes it (config-worker.ts), so the held id
 * deploys again if the server later goes back to it.
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../lib/atomic-file.ts';

function holdFile(confDir: string): string {
  return path.join(confDir, 'hold');
}

/** The held desired id, or undefined. */
export async function readHold(confDir: string): Promise<string | undefined> {
  try {
    return (await readFile(holdFile(confDir), 'utf8')).trim() || undefined;
  } catch {
    return undefined;
  }
}

/** Holds `id`: the agent will not deploy it again. */
export async function writeHold(confDir: string, id: string): Promise<void> {
  await writeFileAtomic(holdFile(confDir), `${id}\n`);
}

/** Releases the hold, if any. */
export async function removeHold(confDir: string): Promise<void> {
  await rm(holdFile(confDir), { force: true });
}
