/** Selector assignments in a KV bucket, keyed by configuration and selector. */
import type { Assignment } from '../contract.ts';
import { nowIso, token } from './codec.ts';
import type { NatsContext } from './context.ts';
import { allRecords, createRecord, deleteRecord, getRecord } from './kv-records.ts';

/** The key of an assignment. */
function key(configuration: string, selector: string): string {
  return `${token(configuration)}.${token(selector)}`;
}

/** Adds an assignment, or returns the stored one unchanged when it exists. */
export async function putAssignment(ctx: NatsContext, input: { configuration: string; selector: string; actor: string }): Promise<Assignment> {
  const k = key(input.configuration, input.selector);
  for (;;) {
    const record: Assignment = { configuration: input.configuration, selector: input.selector, createdAt: nowIso(), createdBy: input.actor };
    if ((await createRecord(ctx.kv.assignments, k, record)) !== undefined) return record;
    const stored = await getRecord<Assignment>(ctx.kv.assignments, k);
    if (stored !== undefined) return stored.value;
  }
}

/** Removes an assignment; false when absent. */
export async function deleteAssignment(ctx: NatsContext, configuration: string, selector: string): Promise<boolean> {
  const k = key(configuration, selector);
  for (;;) {
    const stored = await getRecord<Assignment>(ctx.kv.assignments, k);
    if (stored === undefined) return false;
    if (await deleteRecord(ctx.kv.assignments, k, stored.revision)) return true;
  }
}

/** Every assignment, sorted by configuration, then selector. */
export async function listAssignments(ctx: NatsContext): Promise<Assignment[]> {
  const compare = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
  return (await allRecords<Assignment>(ctx, ctx.layout.buckets.assignments))
    .map((e) => e.value)
    .sort((a, b) => compare(a.configuration, b.configuration) || compare(a.selector, b.selector));
}
