/**
 * `CONFDIR/service.json`: the service this agent started for a configuration — pid, the
 * process's start time from /proc, the release it runs from and the spec it was started with —
 * written atomically at every start, so an agent that restarts re-adopts the same process (and
 * a rollback knows how to start the previous release again).
 */
import { readFile, rm } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../lib/atomic-file.ts';
import type { ServiceSpec } from '../../protocol/service.ts';

/** The content of service.json. */
export interface ServiceRecord {
  configuration: string;
  runtime: 'process' | 'systemd';
  /** Absent once the service was stopped on purpose. */
  pid?: number;
  /** /proc/<pid>/stat field 22, as text. */
  startTime?: string;
  startedAt?: string;
  releaseId: string;
  revision: number;
  restarts: number;
  spec: ServiceSpec;
}

/** Path of a configuration's service record. */
export function serviceRecordPath(confDir: string): string {
  return path.join(confDir, 'service.json');
}

/** Reads service.json; undefined when absent or unreadable (an unreadable record adopts nothing). */
export async function readServiceRecord(confDir: string): Promise<ServiceRecord | undefined> {
  try {
    const record = JSON.parse(await readFile(serviceRecordPath(confDir), 'utf8')) as ServiceRecord;
    return typeof record.releaseId === 'string' && typeof record.spec === 'object' ? record : undefined;
  } catch {
    return undefined;
  }
}

/** Writes service.json atomically. */
export async function writeServiceRecord(confDir: string, record: ServiceRecord): Promise<void> {
  await writeFileAtomic(serviceRecordPath(confDir), `${JSON.stringify(record, null, 2)}\n`, 0o600);
}

/** Removes service.json (the service section was removed). */
export async function removeServiceRecord(confDir: string): Promise<void> {
  await rm(serviceRecordPath(confDir), { force: true });
}
