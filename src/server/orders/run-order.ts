/**
 * An order from request to record: checks and resolves it (before any byte of the answer, so a
 * refusal is a plain JSON error), records it, runs it while streaming NDJSON events, then stores
 * every host's result and one audit entry with the outcome counts.
 */
import { randomBytes } from 'node:crypto';
import type { PassThrough } from 'node:stream';
import { StrataError } from '../../core/errors.ts';
import type { Logger } from '../../lib/logger.ts';
import { ORDER_TIMEOUT, type OrderEvent, type OrderRequest, type OrderSummary } from '../../protocol/order-api.ts';
import type { HostResult, OrderArgs } from '../../protocol/orders.ts';
import type { Store } from '../../store/contract.ts';
import { dispatchOrder, type OrderChannels } from './dispatch.ts';
import { resolveTarget } from './targets.ts';

/** An order that passed every check, ready to run. */
export interface PreparedOrder {
  id: string;
  actor: string;
  args: OrderArgs;
  target: OrderRequest['target'];
  hosts: string[];
  timeoutMs: number;
  batch?: number;
}

/** Past this many buffered bytes (a slow client), progress lines are dropped; results never are. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;
/** How many host names an audit entry lists; the order record keeps them all. */
const AUDIT_HOSTS = 100;

/** Checks the timeout, resolves the target and records the order; throws a StrataError when refused. */
export async function prepareOrder(store: Store, actor: string, request: OrderRequest): Promise<PreparedOrder> {
  const follow = request.args.verb === 'logs' && request.args.follow;
  const maxMs = follow ? ORDER_TIMEOUT.followMaxMs : ORDER_TIMEOUT.maxMs;
  const timeoutMs = request.timeoutMs ?? (follow ? ORDER_TIMEOUT.followMaxMs : ORDER_TIMEOUT.defaultMs);
  if (timeoutMs > maxMs) throw new StrataError('BAD_REQUEST', `timeoutMs ${timeoutMs} is over the limit of ${maxMs} ms for this order`, { details: { maxMs } });
  const { hosts } = await resolveTarget(store, request.target);
  if (hosts.length === 0) throw new StrataError('NO_TARGET', 'the target picks no agent', { details: { target: request.target } });
  const id = randomBytes(6).toString('hex');
  await store.createOrder({ id, actor, args: request.args, target: request.target, hosts });
  return { id, actor, args: request.args, target: request.target, hosts, timeoutMs, ...(request.batch === undefined ? {} : { batch: request.batch }) };
}

/** Counts results by outcome. */
export function summarize(results: Iterable<HostResult>): OrderSummary {
  const summary: OrderSummary = { ok: 0, failed: 0, offline: 0, timedOut: 0 };
  for (const result of results) {
    if (result.ok) summary.ok += 1;
    else summary.failed += 1;
    if (result.code === 'OFFLINE') summary.offline += 1;
    if (result.code === 'TIMEOUT') summary.timedOut += 1;
  }
  return summary;
}

/** Runs a prepared order, writing its events to `out` as NDJSON and ending it; never rejects. */
export async function runOrder(deps: { store: Store; channels: OrderChannels; log: Logger }, order: PreparedOrder, out: PassThrough, signal: AbortSignal): Promise<void> {
  let dropped = 0;
  const write = (event: OrderEvent): void => {
    if (out.destroyed || out.writableEnded) return;
    if (event.type === 'progress' && out.writableLength > MAX_BUFFERED_BYTES) {
      dropped += 1;
      return;
    }
    out.write(`${JSON.stringify(event)}\n`);
  };
  write({ type: 'order', id: order.id, verb: order.args.verb, hosts: order.hosts });
  let summary: OrderSummary = { ok: 0, failed: order.hosts.length, offline: 0, timedOut: 0 };
  try {
    const results = await dispatchOrder(deps.channels, { ...order, signal, emit: write });
    summary = summarize(results.values());
    await deps.store.finishOrder(order.id, { summary, results: Object.fromEntries(results) });
    await deps.store.appendAudit({
      actor: order.actor, action: `order.${order.args.verb}`, target: order.id, result: summary.failed === 0 ? 'ok' : 'failed',
      details: {
        args: order.args, target: order.target, hostCount: order.hosts.length, hosts: order.hosts.slice(0, AUDIT_HOSTS), summary,
        ...(dropped > 0 ? { droppedProgress: dropped } : {}),
      },
    });
  } catch (error) {
    deps.log.error({ err: error, order: order.id }, 'recording an order failed');
  } finally {
    if (dropped > 0) deps.log.info({ order: order.id, dropped }, 'progress lines dropped for a slow client');
    write({ type: 'done', summary });
    out.end();
  }
}
