/**
 * STATEFILE: the configuration as deploy-tools JSON, written for one hook run. The file is private
 * (0600, created exclusively, so nothing already there is followed or reused) and the caller
 * removes it once the hook has finished.
 */
import { randomBytes } from 'node:crypto';
import { open } from 'node:fs/promises';
import path from 'node:path';
import { renderDeployToolsJson } from '../../core/deploy-tools-json.ts';
import type { Configuration } from '../../store/contract.ts';

/** Prefix of STATEFILE names, so leftovers of a crashed agent are recognisable. */
export const STATE_FILE_PREFIX = '.statefile-';

/** Writes the configuration's deploy-tools JSON to a new 0600 file in `dir` and returns its path. */
export async function writeStateFile(dir: string, configuration: Configuration): Promise<string> {
  const file = path.join(dir, `${STATE_FILE_PREFIX}${randomBytes(8).toString('hex')}.json`);
  const handle = await open(file, 'wx', 0o600);
  try {
    await handle.writeFile(renderDeployToolsJson(configuration));
  } finally {
    await handle.close();
  }
  return file;
}
