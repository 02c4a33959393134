/** Enrolled agents in a KV bucket; the record's own revision (1, 2, …) rides on the KV revision's compare-and-set. */
import { StrataError } from '../../core/errors.ts';
import type { AgentRecord } from '../contract.ts';
import { token } from './codec.ts';
import type { NatsContext } from './context.ts';
import { allRecords, createRecord, getRecord, updateRecord } from './kv-records.ts';

/** An agent, or undefined. */
export async function getAgent(ctx: NatsContext, name: string): Promise<AgentRecord | undefined> {
  return (await getRecord<AgentRecord>(ctx.kv.agents, token(name)))?.value;
}

/** Every agent, sorted by name. */
export async function listAgents(ctx: NatsContext): Promise<AgentRecord[]> {
  return (await allRecords<AgentRecord>(ctx, ctx.layout.buckets.agents)).map((e) => e.value).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Writes an agent if `expectedRevision` is its stored revision (0: it must not exist). */
export async function putAgent(ctx: NatsContext, record: Omit<AgentRecord, 'revision'>, expectedRevision: number): Promise<AgentRecord> {
  const key = token(record.name);
  const stored = await getRecord<AgentRecord>(ctx.kv.agents, key);
  const current = stored?.value.revision ?? 0;
  if (current === expectedRevision) {
    // A caller may pass a full AgentRecord; its stale revision must not be stored.
    const { revision: _ignored, ...fields } = record as AgentRecord;
    const written: AgentRecord = { ...fields, revision: current + 1 };
    const ok = stored === undefined ? await createRecord(ctx.kv.agents, key, written) : await updateRecord(ctx.kv.agents, key, written, stored.revision);
    if (ok !== undefined) return written;
  }
  const now = (await getRecord<AgentRecord>(ctx.kv.agents, key))?.value.revision ?? 0;
  throw new StrataError('REVISION_CONFLICT', `agent ${record.name} is at revision ${now}, not ${expectedRevision}`, {
    details: { name: record.name, expectedRevision, currentRevision: now },
  });
}
