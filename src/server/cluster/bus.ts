/**
 * The cluster bus: what one server replica tells the others and hears from them, so that agents
 * connected to any replica behave as if every replica held them. The hub (`channel/hub.ts`) is its
 * only user. Two implementations: `LocalBus` (one server process, the default: there is nobody to
 * tell) and `NatsBus` (`nats-bus.ts`, replicas sharing a NATS cluster).
 *
 * Semantics every implementation keeps:
 * - **Presence**: `claim`/`release` announce that this replica holds (or stopped holding) a session
 *   of an agent; `holder(agent)` answers which *other* live replica holds the agent's newest
 *   session, or undefined. A replica that stops announcing itself is considered dead after the
 *   bus's expiry and everything it held disappears from `holder`.
 * - **Routing**: `sendToAgent` hands an order or cancel to the replica that holds the agent;
 *   `replyToOrigin` hands an agent's progress or result back to the replica that sent the order.
 *   Messages from one replica to another arrive in the order they were sent.
 * - **Broadcasts**: `broadcast` tells every other replica (never this one) about a change it must
 *   apply to the agents it holds.
 */
import { randomBytes } from 'node:crypto';
import type { MetricsSummary } from '../../protocol/metrics.ts';
import type { AgentOrder } from '../../protocol/orders.ts';
import type { OrderReply } from '../channel/session.ts';

/** A random id for this server process, shown in logs and in `GET /v1/health`. */
export function newReplicaId(): string {
  return randomBytes(6).toString('hex');
}

/** An order message for an agent, as the origin replica would send it over the agent's channel. */
export type AgentCommand = { type: 'order'; order: AgentOrder } | { type: 'order-cancel'; orderId: string };

/** A change another replica made that the agents held here may need to hear about. */
export type ClusterEvent =
  | { type: 'assignments' }
  | { type: 'agent'; name: string; labels: Record<string, string>; tracks: string[] }
  | { type: 'revoke'; name: string }
  /** A metrics summary an agent held elsewhere sent, so `strata top` on any replica sees the whole fleet. */
  | { type: 'metrics'; name: string; summary: MetricsSummary };

/** Which other replica holds an agent's newest session. */
export interface RemoteHolder {
  replica: string;
  session: string;
  /** When the session opened (ms since the epoch, the holding replica's clock). */
  connectedAt: number;
  /** When this replica last heard the holder announce itself (ms, local clock). */
  heardAt: number;
}

/** What the bus calls on the hub. */
export interface BusHandlers {
  /** Another replica sends an order or cancel to an agent this replica holds. */
  deliver(agent: string, command: AgentCommand, origin: string): void;
  /** An agent held elsewhere answered an order this replica sent. */
  reply(agent: string, reply: OrderReply): void;
  /** Another replica changed something (see ClusterEvent). */
  event(event: ClusterEvent): void;
  /**
   * `replica` held `agent` and no longer does (its session closed, it moved, or the replica
   * died): orders sent to the agent through that replica will get no answer.
   */
  moved(agent: string, replica: string): void;
  /** Another replica holds a newer session of `agent`, which this replica also holds: close ours. */
  superseded(agent: string, session: string): void;
}

/** The cluster bus (see the file's TSDoc for the semantics). */
export interface ClusterBus {
  /** This replica's id. */
  readonly replica: string;
  /** Which implementation: `local` or `nats`. */
  readonly kind: string;
  /** Starts listening; handlers are called from then on. */
  start(handlers: BusHandlers): Promise<void>;
  /** This replica now holds `session` of `agent`, opened at `connectedAt` (ms). */
  claim(agent: string, session: string, connectedAt: number): void;
  /** This replica no longer holds `session` of `agent`. */
  release(agent: string, session: string): void;
  /** The other live replica holding the agent's newest session, if any. */
  holder(agent: string): RemoteHolder | undefined;
  /** How many agents other live replicas hold. */
  remoteCount(): number;
  /** Live replicas other than this one, by id. */
  peers(): string[];
  /** Hands a command to the agent held by `replica`. */
  sendToAgent(replica: string, agent: string, command: AgentCommand): void;
  /** Hands an agent's reply to the replica that sent the order. */
  replyToOrigin(origin: string, agent: string, reply: OrderReply): void;
  /** Tells every other replica about a change. */
  broadcast(event: ClusterEvent): void;
  /** Stops announcing and listening. Idempotent. */
  close(): Promise<void>;
}

/** One server process: no other replica exists, so nothing is sent and nobody else holds an agent. */
export class LocalBus implements ClusterBus {
  readonly replica: string;
  readonly kind = 'local';

  constructor(replica = newReplicaId()) {
    this.replica = replica;
  }

  async start(): Promise<void> {}
  claim(): void {}
  release(): void {}
  holder(): RemoteHolder | undefined {
    return undefined;
  }
  remoteCount(): number {
    return 0;
  }
  peers(): string[] {
    return [];
  }
  sendToAgent(): void {}
  replyToOrigin(): void {}
  broadcast(): void {}
  async close(): Promise<void> {}
}
