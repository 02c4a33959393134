/**
 * `strata agent rollback`: switches a configuration's `current` back to its previous release on
 * this machine alone — no server, well under a second — and holds the release it left, so a
 * running agent does not roll forward to it again until a new revision arrives. It runs beside a
 * running agent on purpose; the releases lock keeps it from meeting the agent's switch or prune.
 */
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../core/errors.ts';
import { readCurrent, switchToPrevious, withReleasesLock } from './releases/index.ts';
import { readHold, removeHold, writeHold } from './hold.ts';

/**
 * How long a rollback waits for the releases lock. The agent holds it for milliseconds at a time,
 * so a wait this long means a stuck holder, and the operator hears so instead of a hung command.
 */
export const ROLLBACK_LOCK_WAIT_MS = 5_000;

/** The configurations deployed under an agent directory (those with a `current` link). */
async function deployedConfigurations(dir: string): Promise<string[]> {
  const names: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (!entry.isDirectory() || entry.name === 'cache') continue;
    if (await stat(path.join(dir, entry.name, 'current')).then(() => true, () => false)) names.push(entry.name);
  }
  return names.sort();
}

/** Rolls one configuration back; `config` may be omitted when only one is deployed. */
export async function rollbackConfiguration(dir: string, config?: string, lockWaitMs = ROLLBACK_LOCK_WAIT_MS): Promise<{ configuration: string; from: string; to: string }> {
  const deployed = await deployedConfigurations(dir);
  const name = config ?? (deployed.length === 1 ? deployed[0] : undefined);
  if (!name) {
    throw new StrataError('BAD_REQUEST', deployed.length === 0 ? `nothing is deployed under ${dir}` : `several configurations are deployed (${deployed.join(', ')}): pick one with --config`);
  }
  if (!deployed.includes(name)) throw new StrataError('CONFIGURATION_NOT_FOUND', `configuration "${name}" is not deployed under ${dir}`);
  return { configuration: name, ...(await rollbackLocal(path.join(dir, name), lockWaitMs)) };
}

/**
 * Rolls the configuration in `confDir` back one release and holds the one it left. The agent will
 * deploy the desired state again once another revision is desired, so a server-side rollback is
 * the lasting one.
 */
export async function rollbackLocal(confDir: string, lockWaitMs = ROLLBACK_LOCK_WAIT_MS): Promise<{ from: string; to: string }> {
  // Under the releases lock, so that the agent neither switches `current` nor lets go of a hold
  // (another revision releases it) between this hold and this switch. The hold goes first; when
  // the rollback fails, the previous hold comes back.
  return withReleasesLock(confDir, async () => {
    const previous = await readHold(confDir);
    const current = await readCurrent(confDir);
    if (current !== undefined) await writeHold(confDir, current);
    try {
      return await switchToPrevious(confDir);
    } catch (error) {
      await (previous === undefined ? removeHold(confDir) : writeHold(confDir, previous));
      throw error;
    }
  }, lockWaitMs);
}
