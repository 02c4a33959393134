/** Host groups in a KV bucket, keyed by name. */
import type { GroupRecord } from '../contract.ts';
import { nowIso, token } from './codec.ts';
import type { NatsContext } from './context.ts';
import { allRecords, deleteRecord, getRecord, putRecord } from './kv-records.ts';

/** Creates or replaces a group. */
export async function putGroup(ctx: NatsContext, input: { name: string; hosts?: string[]; selector?: string; actor: string }): Promise<GroupRecord> {
  const record: GroupRecord = {
    name: input.name,
    ...(input.hosts === undefined ? {} : { hosts: [...input.hosts] }),
    ...(input.selector === undefined ? {} : { selector: input.selector }),
    updatedAt: nowIso(), updatedBy: input.actor,
  };
  await putRecord(ctx.kv.groups, token(input.name), record);
  return record;
}

/** A group, or undefined. */
export async function getGroup(ctx: NatsContext, name: string): Promise<GroupRecord | undefined> {
  return (await getRecord<GroupRecord>(ctx.kv.groups, token(name)))?.value;
}

/** Every group, sorted by name. */
export async function listGroups(ctx: NatsContext): Promise<GroupRecord[]> {
  return (await allRecords<GroupRecord>(ctx, ctx.layout.buckets.groups)).map((e) => e.value).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
}

/** Removes a group; false when absent. */
export async function deleteGroup(ctx: NatsContext, name: string): Promise<boolean> {
  for (;;) {
    const stored = await getRecord<GroupRecord>(ctx.kv.groups, token(name));
    if (stored === undefined) return false;
    if (await deleteRecord(ctx.kv.groups, token(name), stored.revision)) return true;
  }
}
