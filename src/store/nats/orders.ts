/**
 * Fleet orders in two streams: `orders.<id>` holds each order as created (never rewritten, so
 * stream order is creation order and "newest N" is a sequence range), `order-results.<id>` its
 * outcome, written once with compare-and-set (finishing twice keeps the first). Creating an
 * order then prunes the oldest beyond `keep`: not in the same atomic write as SQLite does, but
 * right after it, and idempotently, so a crash in between leaves at most a few extra orders that
 * the next creation removes.
 */
import { randomBytes } from 'node:crypto';
import { StrataError } from '../../core/errors.ts';
import type { HostResult } from '../../protocol/orders.ts';
import { ORDER_RETENTION, type OrderCounts, type OrderRecord } from '../contract.ts';
import { boundedResults } from '../order-limits.ts';
import { fromJson, isWrongLastSequence, nowIso, storageError, toJson, token } from './codec.ts';
import type { NatsContext } from './context.ts';
import { getLast, readRange } from './stream-reads.ts';

/**
 * An order's outcome as stored. Results too large for one message (an order to thousands of hosts
 * can exceed NATS's max_payload) go into `parts` messages of their own, written first under a
 * nonce of this attempt; the outcome message then names them, and is what makes them count.
 */
interface StoredOutcome {
  finishedAt: string;
  summary: OrderCounts;
  results: Record<string, HostResult>;
  parts?: { nonce: string; count: number };
}

const subjects = {
  order: (ctx: NatsContext, id: string) => `${ctx.layout.prefix}.orders.${token(id)}`,
  outcome: (ctx: NatsContext, id: string) => `${ctx.layout.prefix}.order-results.${token(id)}`,
  /** Every message of an order's outcome, parts included (for pruning). */
  outcomeAll: (ctx: NatsContext, id: string) => `${ctx.layout.prefix}.order-results.${token(id)}.>`,
  part: (ctx: NatsContext, id: string, nonce: string, index: number) => `${ctx.layout.prefix}.order-results.${token(id)}.part.${nonce}.${index}`,
};

/** Largest message an outcome part may be: well under the server's max_payload, whatever it is. */
function partBudget(ctx: NatsContext): number {
  return Math.max(64 * 1024, Math.floor((ctx.nc.info?.max_payload ?? 1024 * 1024) / 2));
}

/** Splits results into groups whose JSON fits `budget` bytes each. */
function splitResults(results: Record<string, HostResult>, budget: number): Record<string, HostResult>[] {
  const groups: Record<string, HostResult>[] = [];
  let group: Record<string, HostResult> = {};
  let bytes = 2;
  for (const [host, result] of Object.entries(results)) {
    const size = Buffer.byteLength(JSON.stringify(host)) + Buffer.byteLength(JSON.stringify(result)) + 2;
    if (bytes + size > budget && bytes > 2) {
      groups.push(group);
      group = {};
      bytes = 2;
    }
    group[host] = result;
    bytes += size;
  }
  groups.push(group);
  return groups;
}

/** Records a new order and prunes the oldest beyond `keep`. */
export async function createOrder(
  ctx: NatsContext,
  input: Omit<OrderRecord, 'createdAt' | 'finishedAt' | 'summary' | 'results'> & { createdAt?: string },
  options: { keep?: number } = {},
): Promise<OrderRecord> {
  const keep = Math.max(1, Math.floor(options.keep ?? ORDER_RETENTION));
  const record: OrderRecord = { id: input.id, createdAt: input.createdAt ?? nowIso(), actor: input.actor, args: input.args, target: input.target, hosts: [...input.hosts] };
  try {
    await ctx.js.publish(subjects.order(ctx, record.id), toJson(record), { expect: { lastSubjectSequence: 0 } });
  } catch (error) {
    if (isWrongLastSequence(error)) throw new StrataError('BAD_REQUEST', `order ${JSON.stringify(record.id)} already exists`, { details: { id: record.id } });
    throw storageError(error);
  }
  await prune(ctx, keep);
  return record;
}

/** Removes the oldest orders (and their outcomes) beyond the newest `keep`. */
async function prune(ctx: NatsContext, keep: number): Promise<void> {
  const stream = ctx.layout.orders.stream;
  const { state } = await ctx.jsm.streams.info(stream);
  if (state.messages <= keep) return;
  const doomed = await readRange(ctx, stream, state.first_seq, state.first_seq + (state.messages - keep) - 1);
  const last = doomed[doomed.length - 1];
  if (last === undefined) return;
  await ctx.jsm.streams.purge(stream, { seq: last.seq + 1 });
  for (const message of doomed) {
    const { id } = fromJson<OrderRecord>(message.data);
    await ctx.jsm.streams.purge(ctx.layout.orderResults.stream, { filter: subjects.outcome(ctx, id) });
    await ctx.jsm.streams.purge(ctx.layout.orderResults.stream, { filter: subjects.outcomeAll(ctx, id) });
  }
}

/** Records an order's outcome once; a second call returns the first outcome. */
export async function finishOrder(ctx: NatsContext, id: string, outcome: { summary: OrderCounts; results: Record<string, HostResult>; finishedAt?: string }): Promise<OrderRecord> {
  const created = await getLast(ctx, ctx.layout.orders.stream, subjects.order(ctx, id));
  if (created === undefined) throw new StrataError('ORDER_NOT_FOUND', `order ${JSON.stringify(id)} not found`, { details: { id } });
  const record = fromJson<OrderRecord>(created.data);
  const results = boundedResults(outcome.results);
  const groups = splitResults(results, partBudget(ctx));
  const base = { finishedAt: outcome.finishedAt ?? nowIso(), summary: { ...outcome.summary } };
  let stored: StoredOutcome = { ...base, results };
  if (groups.length > 1) {
    const nonce = randomBytes(6).toString('hex');
    for (const [index, group] of groups.entries()) {
      try {
        await ctx.js.publish(subjects.part(ctx, id, nonce, index), toJson(group));
      } catch (error) {
        throw storageError(error);
      }
    }
    stored = { ...base, results: {}, parts: { nonce, count: groups.length } };
  }
  try {
    await ctx.js.publish(subjects.outcome(ctx, id), toJson(stored), { expect: { lastSubjectSequence: 0 } });
    return { ...record, ...base, results };
  } catch (error) {
    if (!isWrongLastSequence(error)) throw storageError(error);
  }
  return (await getOrder(ctx, id)) ?? record;
}

/** One order with its results, or undefined. */
export async function getOrder(ctx: NatsContext, id: string): Promise<OrderRecord | undefined> {
  const [created, finished] = await Promise.all([
    getLast(ctx, ctx.layout.orders.stream, subjects.order(ctx, id)),
    getLast(ctx, ctx.layout.orderResults.stream, subjects.outcome(ctx, id)),
  ]);
  if (created === undefined) return undefined;
  const record = fromJson<OrderRecord>(created.data);
  if (finished === undefined) return record;
  const { parts, ...outcome } = fromJson<StoredOutcome>(finished.data);
  if (parts === undefined) return { ...record, ...outcome };
  const messages = await Promise.all(Array.from({ length: parts.count }, (_, index) => getLast(ctx, ctx.layout.orderResults.stream, subjects.part(ctx, id, parts.nonce, index))));
  const results: Record<string, HostResult> = {};
  for (const message of messages) {
    if (message === undefined) throw new StrataError('INTERNAL', `a part of order ${JSON.stringify(id)}'s results is missing from NATS`);
    Object.assign(results, fromJson<Record<string, HostResult>>(message.data));
  }
  return { ...record, ...outcome, results };
}

/** Orders newest first, without results. */
export async function listOrders(ctx: NatsContext, options: { limit: number; before?: string }): Promise<OrderRecord[]> {
  const limit = Math.max(0, Math.floor(options.limit));
  const stream = ctx.layout.orders.stream;
  let { first_seq: first, last_seq: high } = (await ctx.jsm.streams.info(stream)).state;
  if (options.before !== undefined) {
    const before = await getLast(ctx, stream, subjects.order(ctx, options.before));
    if (before === undefined) throw new StrataError('ORDER_NOT_FOUND', `order ${JSON.stringify(options.before)} not found`, { details: { id: options.before } });
    high = before.seq - 1;
  }
  const records: OrderRecord[] = [];
  // Creation messages are never rewritten, so the newest orders are the highest sequences; walk down.
  while (records.length < limit && high >= first && high > 0) {
    const low = Math.max(first, high - (limit - records.length) + 1);
    const batch = await readRange(ctx, stream, low, high);
    for (const message of batch.reverse()) records.push(fromJson<OrderRecord>(message.data));
    high = low - 1;
    if (batch.length === 0) first = Math.max(first, (await ctx.jsm.streams.info(stream)).state.first_seq);
  }
  const outcomes = await Promise.all(records.map((r) => getLast(ctx, ctx.layout.orderResults.stream, subjects.outcome(ctx, r.id))));
  return records.slice(0, limit).map((record, i) => {
    const outcome = outcomes[i];
    if (outcome === undefined) return record;
    const { finishedAt, summary } = fromJson<StoredOutcome>(outcome.data);
    return { ...record, finishedAt, summary };
  });
}
