/**
 * Runs one order across its hosts: sends `order` over each agent's channel (at most `batch` in
 * flight), gathers `order-progress` and `order-result` replies, and gives every host exactly one
 * result — OFFLINE at once for an agent without a channel, TIMEOUT at the deadline, CANCELLED when
 * the caller aborts — sending `order-cancel` to agents that were still working.
 */
import type { HostResult, OrderArgs } from '../../protocol/orders.ts';
import { SERVER_RESULT_CODES, type OrderEvent } from '../../protocol/order-api.ts';
import { formatDuration } from '../../protocol/duration.ts';
import type { OrderListener } from '../channel/hub.ts';
import type { AgentSession } from '../channel/session.ts';

/** What dispatching needs from the hub. */
export interface OrderChannels {
  session(name: string): Pick<AgentSession, 'send'> | undefined;
  listenOrder(id: string, listener: OrderListener): () => void;
}

/** One order to run. */
export interface Dispatch {
  id: string;
  args: OrderArgs;
  /** Sorted, deduplicated agent names. */
  hosts: readonly string[];
  timeoutMs: number;
  /** At most this many hosts in flight; unbounded when absent. */
  batch?: number;
  /** Aborting cancels every host still outstanding (the client went away). */
  signal: AbortSignal;
  /** Receives progress and result events as they happen. */
  emit(event: Extract<OrderEvent, { type: 'progress' | 'result' }>): void;
}

/** A result the server gives in the agent's place. */
function serverResult(code: string, message: string, durationMs: number): HostResult {
  return { ok: false, code, message, durationMs };
}

/** Adds the round trip the server measured to a ping's content. */
function withRtt(result: HostResult, rttMs: number): HostResult {
  const content = result.content;
  const base = content !== null && typeof content === 'object' && !Array.isArray(content) ? content : content === undefined ? {} : { value: content };
  return { ...result, content: { ...base, rttMs } };
}

/** Runs the order; resolves with every host's result once each has one. */
export function dispatchOrder(channels: OrderChannels, order: Dispatch): Promise<Map<string, HostResult>> {
  const results = new Map<string, HostResult>();
  const inFlight = new Map<string, number>();
  const queue: string[] = [];
  const limit = order.batch ?? Number.POSITIVE_INFINITY;
  const startedAt = Date.now();
  const deadline = startedAt + order.timeoutMs;
  let stopped = false;
  let pumping = false;
  let resolveDone!: () => void;
  const done = new Promise<void>((resolve) => (resolveDone = resolve));

  const settle = (host: string, result: HostResult): void => {
    if (results.has(host)) return;
    results.set(host, result);
    inFlight.delete(host);
    order.emit({ type: 'result', host, result });
    if (results.size === order.hosts.length) resolveDone();
    else pump();
  };

  const start = (host: string): void => {
    const session = channels.session(host);
    if (!session) return settle(host, serverResult(SERVER_RESULT_CODES.OFFLINE, 'the agent is not connected', 0));
    inFlight.set(host, Date.now());
    session.send({ type: 'order', order: { id: order.id, args: order.args, deadline: new Date(deadline).toISOString() } });
  };

  // Re-entrant calls (a host found offline while starting the next) return at once; the outer loop continues.
  const pump = (): void => {
    if (pumping) return;
    pumping = true;
    while (!stopped && queue.length > 0 && inFlight.size < limit) start(queue.shift()!);
    pumping = false;
  };

  /** Ends every outstanding host with `code`, telling agents still working to stop. */
  const stop = (code: string, message: string): void => {
    if (stopped) return;
    stopped = true;
    const now = Date.now();
    for (const [host, sentAt] of [...inFlight]) {
      channels.session(host)?.send({ type: 'order-cancel', orderId: order.id });
      settle(host, serverResult(code, message, now - sentAt));
    }
    for (const host of queue.splice(0)) settle(host, serverResult(code, `${message} (not started)`, 0));
  };

  const listener: OrderListener = {
    reply(agent, reply) {
      const sentAt = inFlight.get(agent);
      if (sentAt === undefined) return;
      if (reply.type === 'order-progress') return order.emit({ type: 'progress', host: agent, content: reply.content });
      settle(agent, order.args.verb === 'ping' ? withRtt(reply.result, Date.now() - sentAt) : reply.result);
    },
    closed(agent) {
      const sentAt = inFlight.get(agent);
      if (sentAt !== undefined) settle(agent, serverResult(SERVER_RESULT_CODES.OFFLINE, 'the agent disconnected before answering', Date.now() - sentAt));
    },
  };
  const unlisten = channels.listenOrder(order.id, listener);
  const timer = setTimeout(() => stop(SERVER_RESULT_CODES.TIMEOUT, `no result within ${formatDuration(order.timeoutMs)}`), order.timeoutMs);
  const onAbort = (): void => stop(SERVER_RESULT_CODES.CANCELLED, 'the order was cancelled: its client went away');
  order.signal.addEventListener('abort', onAbort, { once: true });

  // Offline hosts are reported first, before any online one is asked (holding the pump meanwhile).
  pumping = true;
  for (const host of order.hosts) {
    if (channels.session(host)) queue.push(host);
    else settle(host, serverResult(SERVER_RESULT_CODES.OFFLINE, 'the agent is not connected', 0));
  }
  pumping = false;
  if (order.hosts.length === 0) resolveDone();
  if (order.signal.aborted) onAbort();
  pump();

  return done.then(() => {
    clearTimeout(timer);
    order.signal.removeEventListener('abort', onAbort);
    unlisten();
    return results;
  });
}
