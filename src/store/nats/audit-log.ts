/** The audit log: one stream, one subject; an entry's `seq` is its stream sequence, so it never goes backwards. */
import type { AuditEntry } from '../contract.ts';
import { fromJson, nowIso, storageError, toJson } from './codec.ts';
import type { NatsContext } from './context.ts';
import { readRange, type Stored } from './stream-reads.ts';

/** Appends an entry, assigning its seq and, if absent, its time. */
export async function appendAudit(ctx: NatsContext, entry: Omit<AuditEntry, 'seq' | 'at'> & { at?: string }): Promise<AuditEntry> {
  const body: Omit<AuditEntry, 'seq'> = { at: entry.at ?? nowIso(), actor: entry.actor, action: entry.action, target: entry.target, result: entry.result };
  if (entry.details !== undefined) body.details = entry.details;
  try {
    const ack = await ctx.js.publish(ctx.layout.audit.subject, toJson(body));
    return { seq: ack.seq, ...body };
  } catch (error) {
    throw storageError(error);
  }
}

/** Entries after `afterSeq`, oldest first, at most `limit`: the first ones, or the last ones when `newest`. */
export async function listAudit(ctx: NatsContext, options: { afterSeq?: number; limit: number; newest?: boolean }): Promise<AuditEntry[]> {
  const limit = Math.max(0, Math.floor(options.limit));
  if (limit === 0) return [];
  const { state } = await ctx.jsm.streams.info(ctx.layout.audit.stream);
  const floor = Math.max((options.afterSeq ?? 0) + 1, state.first_seq);
  const start = options.newest ? Math.max(floor, state.last_seq - limit + 1) : floor;
  if (state.messages === 0 || start > state.last_seq) return [];
  return (await readRange(ctx, ctx.layout.audit.stream, start, Math.min(state.last_seq, start + limit - 1))).map(entryFrom);
}

/** A stored message as an AuditEntry. */
export function entryFrom(message: Stored): AuditEntry {
  const body = fromJson<Omit<AuditEntry, 'seq'>>(message.data);
  const entry: AuditEntry = { seq: message.seq, at: body.at, actor: body.actor, action: body.action, target: body.target, result: body.result };
  if (body.details !== undefined) entry.details = body.details;
  return entry;
}
