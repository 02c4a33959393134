/**
 * `strata agent stop-services`: stops the services an agent left running under its directory
 * (the agent never stops them when it exits). It takes the directory's lock, so it refuses to
 * run beside a running agent, which would start them again.
 */
import { readdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import { lockDirectory } from '../lock.ts';
import { readServiceRecord } from './record.ts';
import { ProcessSupervisor } from './supervisor.ts';

/** What was stopped, per configuration (`pid` undefined: nothing was running). */
export interface StoppedService {
  configuration: string;
  pid?: number;
}

/** Stops every recorded service under `dir`, or only `only`'s. */
export async function stopServices(dir: string, log: Logger, only?: string): Promise<StoppedService[]> {
  const unlock = await lockDirectory(dir);
  try {
    const stopped: StoppedService[] = [];
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      if (!entry.isDirectory() || (only !== undefined && entry.name !== only)) continue;
      const confDir = path.join(dir, entry.name);
      const record = await readServiceRecord(confDir);
      if (!record) continue;
      const supervisor = new ProcessSupervisor({ configuration: entry.name, confDir, log });
      // No resolver needed: it is adopted only to be stopped, with the recorded spec's signal and grace.
      const adopted = await supervisor.adopt(async () => { throw new Error('not restarted'); });
      const pid = supervisor.info().pid;
      if (adopted) await supervisor.stop();
      stopped.push({ configuration: entry.name, ...(pid !== undefined ? { pid } : {}) });
    }
    return stopped.sort((a, b) => a.configuration.localeCompare(b.configuration));
  } finally {
    await unlock();
  }
}
