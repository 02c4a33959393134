/**
 * Agents' status reports: the per-configuration status kept in the AgentRecord (written with
 * compare-and-set, retried when another write got there first) and reading it back typed.
 */
import { isStrataError, StrataError } from '../../core/errors.ts';
import { ConfigStatusSchema, type ConfigStatus, type StatusReport } from '../../protocol/agent.ts';
import type { AgentRecord, Store } from '../../store/contract.ts';

/** How many configurations' statuses an agent record keeps (the newest reports win). */
const MAX_STATUSES = 64;
const CAS_ATTEMPTS = 8;

/** The statuses stored in a record, by configuration; entries that do not parse are left out. */
export function statusesOf(record: AgentRecord): Map<string, ConfigStatus> {
  const statuses = new Map<string, ConfigStatus>();
  for (const [name, value] of Object.entries(record.status ?? {})) {
    const parsed = ConfigStatusSchema.safeParse(value);
    if (parsed.success) statuses.set(name, parsed.data);
  }
  return statuses;
}

/** Merges a report into the stored statuses, keeping the newest `MAX_STATUSES`. */
function mergeStatuses(record: AgentRecord, report: StatusReport): Record<string, ConfigStatus> {
  const statuses = statusesOf(record);
  for (const status of report.configurations) statuses.set(status.configuration, status);
  const newest = [...statuses.values()].sort((a, b) => b.at.localeCompare(a.at)).slice(0, MAX_STATUSES);
  return Object.fromEntries(newest.sort((a, b) => a.configuration.localeCompare(b.configuration)).map((s) => [s.configuration, s]));
}

/** The error for a name no enrolled agent has. */
export function agentNotFound(name: string): StrataError {
  return new StrataError('AGENT_NOT_FOUND', `agent ${JSON.stringify(name)} not found`, { details: { name } });
}

/**
 * Stores a status report (and the inventory, labels and tracks it carries) in the agent's
 * record, with `lastSeenAt`. Returns the written record and whether what selects its
 * configurations changed (labels, which assignments match, or its own `--track` list).
 * A revoked agent is refused with UNAUTHENTICATED.
 */
export async function recordStatus(store: Store, name: string, report: StatusReport, now = new Date()): Promise<{ record: AgentRecord; selectionChanged: boolean }> {
  for (let attempt = 1; ; attempt++) {
    const current = await store.getAgent(name);
    if (!current) throw agentNotFound(name);
    if (current.revokedAt) throw new StrataError('UNAUTHENTICATED', `agent ${JSON.stringify(name)} is revoked`);
    const labelsChanged = report.labels !== undefined && JSON.stringify(sorted(report.labels)) !== JSON.stringify(sorted(current.labels));
    const tracksChanged = report.tracks !== undefined && JSON.stringify([...report.tracks].sort()) !== JSON.stringify([...current.tracks].sort());
    const { revision, ...fields } = current;
    const next: Omit<AgentRecord, 'revision'> = {
      ...fields,
      status: mergeStatuses(current, report),
      lastSeenAt: now.toISOString(),
      ...(report.inventory ? { inventory: report.inventory } : {}),
      ...(report.labels ? { labels: report.labels } : {}),
      ...(report.tracks ? { tracks: report.tracks } : {}),
    };
    try {
      return { record: await store.putAgent(next, revision), selectionChanged: labelsChanged || tracksChanged };
    } catch (error) {
      if (!isStrataError(error, 'REVISION_CONFLICT') || attempt >= CAS_ATTEMPTS) throw error;
    }
  }
}

/** Marks when an agent was last seen (its channel opened or closed), retrying on conflicts; never throws. */
export async function touchAgent(store: Store, name: string, now = new Date()): Promise<void> {
  for (let attempt = 1; attempt <= CAS_ATTEMPTS; attempt++) {
    const current = await store.getAgent(name).catch(() => undefined);
    if (!current || current.revokedAt) return;
    const { revision, ...fields } = current;
    try {
      await store.putAgent({ ...fields, lastSeenAt: now.toISOString() }, revision);
      return;
    } catch (error) {
      if (!isStrataError(error, 'REVISION_CONFLICT')) return;
    }
  }
}

/** Labels with keys in order, so comparisons ignore key order. */
function sorted(labels: Record<string, string>): [string, string][] {
  return Object.entries(labels).sort(([a], [b]) => a.localeCompare(b));
}
