/**
 * Where order messages go, whichever replica holds the agent. On the origin replica (where the
 * operator's request arrived) `session(name)` gives the agent's own channel when it is connected
 * here, or a proxy that sends through the cluster bus to the replica holding it; replies come back
 * to the order's listener either way. On the holding replica, orders forwarded by another replica
 * are remembered so that the agent's replies, or the news that its channel closed, go back to
 * their origin. With the single-process bus there is never a proxy and this is the hub's routing.
 */
import { CHANNEL_VERSION } from '../../protocol/agent.ts';
import { SERVER_RESULT_CODES } from '../../protocol/order-api.ts';
import type { Logger } from '../../lib/logger.ts';
import type { AgentCommand, ClusterBus } from '../cluster/bus.ts';
import type { OrderListener } from '../channel/hub.ts';
import type { AgentSession, OrderReply } from '../channel/session.ts';
import type { OrderChannels } from './dispatch.ts';

/** Orders forwarded to this replica that it keeps routes for; beyond this, new ones are refused with OFFLINE. */
const MAX_FORWARDED_ORDERS = 100_000;
/** How long past its deadline a forwarded order's route is kept, for a late result. */
const FORWARD_GRACE_MS = 60_000;

interface Listening {
  listener: OrderListener;
  /** Hosts this order was sent to through another replica, and which one. */
  remote: Map<string, string>;
}

interface Forwarded {
  origin: string;
  /** Agents here that still owe this order a result. */
  agents: Set<string>;
  expiresAt: number;
}

/** Routes orders and their replies between the operator's replica and the agent's. */
export class OrderRouter implements OrderChannels {
  private readonly local: (name: string) => AgentSession | undefined;
  private readonly bus: ClusterBus;
  private readonly log: Logger;
  private readonly listening = new Map<string, Listening>();
  private readonly forwarded = new Map<string, Forwarded>();

  constructor(deps: { local: (name: string) => AgentSession | undefined; bus: ClusterBus; log: Logger }) {
    this.local = deps.local;
    this.bus = deps.bus;
    this.log = deps.log;
  }

  /** The agent's channel here, a proxy to the replica holding it, or undefined when none does. */
  session(name: string): Pick<AgentSession, 'send'> | undefined {
    const session = this.local(name);
    if (session) return session;
    const holder = this.bus.holder(name);
    if (!holder) return undefined;
    return {
      send: (message) => {
        if (message.type !== 'order' && message.type !== 'order-cancel') return;
        if (message.type === 'order') this.listening.get(message.order.id)?.remote.set(name, holder.replica);
        const command: AgentCommand = message.type === 'order' ? { type: 'order', order: message.order } : { type: 'order-cancel', orderId: message.orderId };
        this.bus.sendToAgent(holder.replica, name, command);
      },
    };
  }

  /** Routes replies to order `id` to `listener` until the returned function is called. */
  listenOrder(id: string, listener: OrderListener): () => void {
    const entry: Listening = { listener, remote: new Map() };
    this.listening.set(id, entry);
    return () => {
      if (this.listening.get(id) === entry) this.listening.delete(id);
    };
  }

  /** An agent connected here replied: to this replica's order, or to the replica that forwarded it. */
  fromAgent(agent: string, reply: OrderReply): void {
    const listening = this.listening.get(reply.orderId);
    if (listening) return listening.listener.reply(agent, reply);
    const forwarded = this.forwarded.get(reply.orderId);
    if (!forwarded?.agents.has(agent)) return;
    this.bus.replyToOrigin(forwarded.origin, agent, reply);
    if (reply.type === 'order-result') this.done(reply.orderId, forwarded, agent);
  }

  /** A reply that another replica forwarded from its agent. */
  remoteReply(agent: string, reply: OrderReply): void {
    const listening = this.listening.get(reply.orderId);
    if (listening?.remote.has(agent)) listening.listener.reply(agent, reply);
  }

  /** Another replica sends a command to an agent held here. */
  deliver(agent: string, command: AgentCommand, origin: string): void {
    const session = this.local(agent);
    if (command.type === 'order-cancel') {
      const forwarded = this.forwarded.get(command.orderId);
      if (forwarded?.agents.has(agent)) {
        session?.send(command);
        this.done(command.orderId, forwarded, agent);
      }
      return;
    }
    const id = command.order.id;
    if (!session) return this.answerOffline(origin, agent, id, 'the agent is no longer connected to the replica that was asked');
    let forwarded = this.forwarded.get(id);
    if (!forwarded) {
      if (this.forwarded.size >= MAX_FORWARDED_ORDERS) {
        this.log.warn({ order: id, origin }, 'too many forwarded orders in flight; refusing one');
        return this.answerOffline(origin, agent, id, 'the replica holding the agent has too many orders in flight');
      }
      const deadline = Date.parse(command.order.deadline);
      forwarded = { origin, agents: new Set(), expiresAt: (Number.isFinite(deadline) ? deadline : Date.now()) + FORWARD_GRACE_MS };
      this.forwarded.set(id, forwarded);
    }
    forwarded.agents.add(agent);
    session.send(command);
  }

  /** The agent's channel here closed: this replica's orders and forwarded ones get no answer from it. */
  agentClosed(agent: string): void {
    for (const { listener, remote } of this.listening.values()) if (!remote.has(agent)) listener.closed(agent);
    for (const [id, forwarded] of this.forwarded) {
      if (!forwarded.agents.has(agent)) continue;
      this.answerOffline(forwarded.origin, agent, id, 'the agent disconnected before answering');
      this.done(id, forwarded, agent);
    }
  }

  /** `replica` no longer holds `agent`: orders sent there for it will get no answer. */
  moved(agent: string, replica: string): void {
    for (const { listener, remote } of this.listening.values()) {
      if (remote.get(agent) === replica) listener.closed(agent);
    }
  }

  /** Forgets forwarded orders long past their deadline. */
  sweep(now = Date.now()): void {
    for (const [id, forwarded] of this.forwarded) if (forwarded.expiresAt < now) this.forwarded.delete(id);
  }

  /** How many forwarded orders still have routes here. */
  get forwardedCount(): number {
    return this.forwarded.size;
  }

  private done(id: string, forwarded: Forwarded, agent: string): void {
    forwarded.agents.delete(agent);
    if (forwarded.agents.size === 0) this.forwarded.delete(id);
  }

  /** Answers a forwarded order in the agent's place. */
  private answerOffline(origin: string, agent: string, orderId: string, message: string): void {
    const result = { ok: false, code: SERVER_RESULT_CODES.OFFLINE, message, durationMs: 0 };
    this.bus.replyToOrigin(origin, agent, { v: CHANNEL_VERSION, id: `offline-${orderId}`.slice(0, 64), type: 'order-result', orderId, result });
  }
}
