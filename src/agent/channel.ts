/**
 * The agent's end of the channel: one WebSocket to the server, authenticated with a signed
 * header, carrying versioned envelopes. The server sends the full desired state on every
 * (re)connect and after every change; both sides ping, and a silent peer is dropped. A lost
 * connection is retried with exponential backoff and full jitter, capped.
 *
 * Orders arriving on a connection are handed to the dispatcher, and their progress and result go
 * back on that same connection; if it closed meanwhile they are dropped (the server reports the
 * order as timed out), because the orders themselves are not tied to one connection.
 */
import { randomUUID } from 'node:crypto';
import WebSocket from 'ws';
import type { Logger } from '../lib/logger.ts';
import { fullJitter, sleep } from '../lib/backoff.ts';
import { CHANNEL_VERSION, ChannelMessageSchema, type ChannelMessage, type DesiredState } from '../protocol/agent.ts';
import type { ServerApi } from './server-api.ts';
import type { OrderDispatcher, OrderSink } from './orders/dispatcher.ts';
import type { MetricsSummary } from '../protocol/metrics.ts';

/** Metrics summaries to send: the latest on every connect, then each new one. */
export interface SummaryFeed {
  latest(): MetricsSummary | undefined;
  subscribe(listener: (summary: MetricsSummary) => void): () => void;
}

/** Timing of the channel; tests shorten it. */
export interface ChannelTiming {
  pingMs: number;
  silenceMs: number;
  reconnectBaseMs: number;
  reconnectCapMs: number;
}

/** The defaults: ping every 15 s, drop after 45 s of silence, reconnect within 1 s … 60 s. */
export const DEFAULT_CHANNEL_TIMING: ChannelTiming = { pingMs: 15_000, silenceMs: 45_000, reconnectBaseMs: 1_000, reconnectCapMs: 60_000 };

/** Keeps one channel open until `signal` aborts, handing every desired state to `onDesired`. */
export async function runChannel(options: {
  api: ServerApi;
  log: Logger;
  signal: AbortSignal;
  onDesired: (state: DesiredState) => void;
  onRefused?: (message: string) => void;
  timing?: ChannelTiming;
  /** Runs the orders the server sends; without it, orders are not read. */
  orders?: OrderDispatcher;
  /** Metrics summaries to send; without it, none are. */
  metrics?: SummaryFeed;
}): Promise<void> {
  const timing = options.timing ?? DEFAULT_CHANNEL_TIMING;
  let attempt = 0;
  while (!options.signal.aborted) {
    const tried = options.api.server;
    const opened = await connectOnce(options, timing);
    if (options.signal.aborted) break;
    if (opened.refused) {
      options.onRefused?.(opened.refused);
      return;
    }
    attempt = opened.wasOpen ? 0 : attempt + 1;
    // A server that could not be reached: try the next replica, if there are several.
    const server = opened.wasOpen ? options.api.server : options.api.failover(tried);
    const wait = fullJitter(attempt, timing.reconnectBaseMs, timing.reconnectCapMs);
    options.log.info({ attempt, waitMs: wait, reason: opened.reason, server }, 'channel closed; reconnecting');
    await sleep(wait, options.signal);
  }
}

/** One connection's lifetime: resolves when it closes, saying whether it was ever open. */
function connectOnce(
  options: { api: ServerApi; log: Logger; signal: AbortSignal; onDesired: (state: DesiredState) => void; orders?: OrderDispatcher; metrics?: SummaryFeed },
  timing: ChannelTiming,
): Promise<{ wasOpen: boolean; reason: string; refused?: string }> {
  const path = '/v1/agent/channel';
  const url = `${options.api.server.replace(/^http/, 'ws').replace(/\/$/, '')}${path}`;
  return new Promise((resolve) => {
    let wasOpen = false;
    let lastHeard = Date.now();
    let refused: string | undefined;
    const socket = new WebSocket(url, {
      ca: options.api.identity.caPem,
      headers: { authorization: options.api.authorization('GET', path) },
      maxPayload: 16 * 1024 * 1024,
      handshakeTimeout: 15_000,
    });
    const send = (message: ChannelMessage): void => {
      if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify(message));
    };
    const sink: OrderSink = {
      progress: (orderId, content) => send({ v: CHANNEL_VERSION, id: randomUUID(), type: 'order-progress', orderId, content }),
      result: (orderId, result) => send({ v: CHANNEL_VERSION, id: randomUUID(), type: 'order-result', orderId, result }),
    };
    const ticker = setInterval(() => {
      if (Date.now() - lastHeard > timing.silenceMs) {
        options.log.warn({ silentMs: Date.now() - lastHeard }, 'channel silent; dropping it');
        socket.terminate();
        return;
      }
      send({ v: CHANNEL_VERSION, id: randomUUID(), type: 'ping', at: new Date().toISOString() });
    }, timing.pingMs);
    const sendSummary = (summary: MetricsSummary): void => send({ v: CHANNEL_VERSION, id: randomUUID(), type: 'metrics', summary });
    let unsubscribe: (() => void) | undefined;
    const onAbort = (): void => socket.close(1001, 'agent stopping');
    options.signal.addEventListener('abort', onAbort, { once: true });

    socket.on('open', () => {
      wasOpen = true;
      lastHeard = Date.now();
      options.log.info({ url }, 'channel open');
      const latest = options.metrics?.latest();
      if (latest) sendSummary(latest);
      unsubscribe = options.metrics?.subscribe(sendSummary);
    });
    socket.on('unexpected-response', (_request, response) => {
      // 401/403 on the upgrade means the server refuses this agent (revoked): retrying cannot help.
      if (response.statusCode === 401 || response.statusCode === 403) refused = `the server refused the agent's credentials (HTTP ${response.statusCode})`;
      response.resume();
      socket.terminate();
    });
    socket.on('message', (data) => {
      lastHeard = Date.now();
      let raw: unknown;
      try {
        raw = JSON.parse(String(data));
      } catch {
        raw = undefined;
      }
      const parsed = ChannelMessageSchema.safeParse(raw);
      if (!parsed.success) {
        // An order this agent cannot read (a newer verb, bad arguments) still gets its one answer.
        const envelope = raw as { type?: unknown; order?: unknown } | undefined;
        if (envelope?.type === 'order' && options.orders) return options.orders.receive(envelope.order, sink);
        options.log.warn({ issue: parsed.error.issues[0]?.message }, 'channel message refused');
        send({ v: CHANNEL_VERSION, id: randomUUID(), type: 'error', code: 'BAD_REQUEST', message: 'unreadable message' });
        return;
      }
      const message: ChannelMessage = parsed.data;
      if (message.type === 'desired') options.onDesired(message.state);
      else if (message.type === 'order') options.orders?.receive(message.order, sink);
      else if (message.type === 'order-cancel') options.orders?.cancel(message.orderId);
      else if (message.type === 'ping') send({ v: CHANNEL_VERSION, id: message.id, type: 'pong', at: new Date().toISOString() });
      else if (message.type === 'error') options.log.warn({ code: message.code, message: message.message }, 'server reported a channel error');
    });
    socket.on('error', (error) => options.log.debug({ err: error }, 'channel error'));
    socket.on('close', (code, reason) => {
      clearInterval(ticker);
      unsubscribe?.();
      options.signal.removeEventListener('abort', onAbort);
      resolve({ wasOpen, reason: `${code} ${String(reason)}`.trim(), ...(refused ? { refused } : {}) });
    });
  });
}
