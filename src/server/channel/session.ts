/**
 * One agent's WebSocket on the server: sends versioned envelopes, validates every inbound
 * message (a bad one gets an `error` message, never a crash), answers pings and hands status
 * reports and order replies to the hub.
 */
import { randomUUID } from 'node:crypto';
import type { WebSocket, RawData } from 'ws';
import type { Logger } from '../../lib/logger.ts';
import { isStrataError } from '../../core/errors.ts';
import { CHANNEL_VERSION, ChannelMessageSchema, type ChannelMessage, type DesiredState, type StatusReport } from '../../protocol/agent.ts';
import type { MetricsSummary } from '../../protocol/metrics.ts';

/** A channel message without the envelope fields the session fills in. */
type Outbound = ChannelMessage extends infer M ? (M extends ChannelMessage ? Omit<M, 'v' | 'id'> & { id?: string } : never) : never;

/** Close codes the server uses (4000-4999 are the application's). */
export const CLOSE = {
  goingAway: 1001,
  replaced: 4000,
  revoked: 4001,
  silent: 4002,
  slow: 4003,
} as const;

// A peer this far behind in reading is better off reconnecting and getting one fresh desired state.
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024;

/** An agent's answer to an order: progress or its one result. */
export type OrderReply = Extract<ChannelMessage, { type: 'order-progress' | 'order-result' }>;

/** What a session needs from its hub. */
export interface SessionHandlers {
  onStatus(session: AgentSession, report: StatusReport): Promise<void>;
  onOrderReply(session: AgentSession, reply: OrderReply): void;
  onHeard(session: AgentSession): void;
  /** A metrics summary arrived; without a handler it is dropped. */
  onMetrics?(session: AgentSession, summary: MetricsSummary): void;
  onClose(session: AgentSession): void;
}

/** The server side of one agent's channel. */
export class AgentSession {
  readonly id = randomUUID();
  readonly agent: string;
  labels: Record<string, string>;
  tracks: string[];
  /** The configurations in the last desired state sent, to know which changes concern this agent. */
  tracked: string[] = [];
  /** When anything last arrived from the agent (ms). */
  lastHeard = Date.now();
  private readonly socket: WebSocket;
  private readonly log: Logger;
  private readonly handlers: SessionHandlers;
  private killTimer: NodeJS.Timeout | undefined;

  constructor(socket: WebSocket, agent: { name: string; labels: Record<string, string>; tracks: string[] }, handlers: SessionHandlers, log: Logger) {
    this.socket = socket;
    this.agent = agent.name;
    this.labels = agent.labels;
    this.tracks = agent.tracks;
    this.handlers = handlers;
    this.log = log;
    socket.on('message', (data, isBinary) => this.receive(data, isBinary));
    socket.on('close', () => {
      clearTimeout(this.killTimer);
      handlers.onClose(this);
    });
  }

  /** True until the socket starts closing. */
  get open(): boolean {
    return this.socket.readyState === this.socket.OPEN;
  }

  /** Sends one message in an envelope; drops a peer that stopped reading. */
  send(message: Outbound): void {
    if (!this.open) return;
    if (this.socket.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.close(CLOSE.slow, 'too far behind; reconnect');
      return;
    }
    this.socket.send(JSON.stringify({ v: CHANNEL_VERSION, id: randomUUID(), ...message }));
  }

  /** Sends a full desired state and remembers which configurations it covers. */
  sendDesired(state: DesiredState): void {
    this.tracked = [...state.configurations.map((c) => c.name), ...state.missing].sort();
    this.send({ type: 'desired', state });
  }

  /** Closes with a code and reason; a peer that does not answer the close is cut off after `graceMs`. */
  close(code: number, reason: string, graceMs = 2000): void {
    if (this.socket.readyState === this.socket.CLOSED) return;
    if (this.open) this.socket.close(code, reason);
    this.killTimer ??= setTimeout(() => this.socket.terminate(), graceMs);
  }

  /** Handles one inbound frame. */
  private receive(data: RawData, isBinary: boolean): void {
    this.lastHeard = Date.now();
    this.handlers.onHeard(this);
    if (isBinary) return this.sendError(undefined, 'BAD_REQUEST', 'binary frames are not accepted; send JSON text');
    let json: unknown;
    try {
      json = JSON.parse(Buffer.isBuffer(data) ? data.toString('utf8') : Buffer.concat(data as Buffer[]).toString('utf8'));
    } catch {
      return this.sendError(undefined, 'BAD_REQUEST', 'the message is not JSON');
    }
    const replyId = typeof (json as { id?: unknown })?.id === 'string' ? ((json as { id: string }).id).slice(0, 64) : undefined;
    const parsed = ChannelMessageSchema.safeParse(json);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const where = issue && issue.path.length > 0 ? `${issue.path.join('.')}: ` : '';
      return this.sendError(replyId, 'BAD_REQUEST', `invalid channel message: ${where}${issue?.message ?? 'unknown problem'}`);
    }
    const message = parsed.data;
    switch (message.type) {
      case 'ping':
        return this.send({ type: 'pong', id: message.id, at: new Date().toISOString() });
      case 'pong':
        return;
      case 'status':
        this.handlers.onStatus(this, message.report).catch((error: unknown) => {
          this.log.info({ agent: this.agent, err: error }, 'status report over the channel refused');
          this.sendError(message.id, isStrataError(error) ? error.code : 'INTERNAL', isStrataError(error) ? error.message : 'the status report could not be stored');
        });
        return;
      case 'metrics':
        return this.handlers.onMetrics?.(this, message.summary);
      case 'error':
        this.log.info({ agent: this.agent, code: message.code, message: message.message }, 'agent reported a channel error');
        return;
      case 'order-progress':
      case 'order-result':
        return this.handlers.onOrderReply(this, message);
      case 'desired':
        return this.sendError(message.id, 'BAD_REQUEST', 'only the server sends desired states');
      case 'order':
      case 'order-cancel':
        return this.sendError(message.id, 'BAD_REQUEST', 'only the server sends orders');
    }
  }

  /** Sends an `error` message, answering `id` when the offending message had one. */
  private sendError(id: string | undefined, code: string, message: string): void {
    this.send({ type: 'error', ...(id ? { id } : {}), code, message });
  }
}
