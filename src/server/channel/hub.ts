/**
 * The fleet hub: every agent channel connected to this server process, one configuration watch
 * fanned out to them, and the heartbeat timer. It keeps the current revision of every
 * configuration and the assignments in memory, so a change reaches thousands of agents without
 * a store read per agent. Through the cluster bus (`../cluster/bus.ts`) it announces the agents
 * it holds, routes orders to agents other replicas hold, and passes on the changes (assignments,
 * an agent's labels, a revocation) that the replica holding an agent must act on.
 */
import type { WebSocket } from 'ws';
import type { Logger } from '../../lib/logger.ts';
import type { AgentRecord, Configuration, ConfigurationEvent, Store } from '../../store/contract.ts';
import type { DesiredState, StatusReport } from '../../protocol/agent.ts';
import { buildDesired, parseAssignments, trackedConfigurations, type ParsedAssignment } from '../agents/desired.ts';
import { Presence } from '../agents/presence.ts';
import { recordStatus, touchAgent } from '../agents/status.ts';
import { AgentSession, CLOSE, type OrderReply } from './session.ts';
import { LocalBus, type BusHandlers, type ClusterBus, type ClusterEvent } from '../cluster/bus.ts';
import { OrderRouter } from '../orders/order-router.ts';
import type { OrderChannels } from '../orders/dispatch.ts';
import { MetricsHistory } from '../metrics/history.ts';
import type { MetricsSummary } from '../../protocol/metrics.ts';

/** Receives the replies to one order, and hears when an agent's channel closes. */
export interface OrderListener {
  reply(agent: string, reply: OrderReply): void;
  closed(agent: string): void;
}

/** Heartbeat timing of the channel. */
export interface ChannelTiming {
  /** How often the server pings every agent. */
  pingIntervalMs: number;
  /** A session silent this long is closed. */
  silenceTimeoutMs: number;
}

/** The defaults: a ping every 15 s, closed after 45 s of silence. */
export const DEFAULT_CHANNEL_TIMING: ChannelTiming = { pingIntervalMs: 15_000, silenceTimeoutMs: 45_000 };

/** Connected agent sessions of this process and what they are sent. */
export class FleetHub implements OrderChannels {
  readonly presence: Presence;
  /** Recent metrics summaries of the fleet: of the agents held here, and those other replicas share (in memory). */
  readonly metrics = new MetricsHistory();
  /** The bus to the other replicas (a LocalBus in a single server). */
  readonly bus: ClusterBus;
  /** Highest store sequence this hub has seen. */
  lastSeq = 0;
  private readonly store: Store;
  private readonly log: Logger;
  private readonly timing: ChannelTiming;
  private readonly sessions = new Map<string, AgentSession>();
  private readonly router: OrderRouter;
  private readonly configurations = new Map<string, Configuration>();
  private assignments: ParsedAssignment[] = [];
  private readonly stop = new AbortController();
  private timer: NodeJS.Timeout | undefined;
  private watching: Promise<void> | undefined;

  constructor(store: Store, log: Logger, timing: ChannelTiming = DEFAULT_CHANNEL_TIMING, bus: ClusterBus = new LocalBus()) {
    this.store = store;
    this.log = log.child({ replica: bus.replica });
    this.timing = timing;
    this.bus = bus;
    this.presence = new Presence((name) => bus.holder(name), bus.replica);
    this.router = new OrderRouter({ local: (name) => this.localSession(name), bus, log: this.log });
  }

  /** This replica's id. */
  get replica(): string {
    return this.bus.replica;
  }

  /** Loads configurations and assignments, then follows changes until `close`. */
  async start(): Promise<void> {
    for (const configuration of await this.store.listConfigurations()) {
      this.configurations.set(configuration.name, configuration);
      this.lastSeq = Math.max(this.lastSeq, configuration.seq);
    }
    this.assignments = parseAssignments(await this.store.listAssignments());
    await this.bus.start(this.busHandlers());
    // Watching from the highest seq listed replays whatever committed in between, so nothing is missed.
    this.watching = this.follow();
    this.timer = setInterval(() => this.heartbeat(), this.timing.pingIntervalMs);
    this.timer.unref();
  }

  /** Applies configuration events as they come; restarts the watch after a failure. */
  private async follow(): Promise<void> {
    while (!this.stop.signal.aborted) {
      try {
        for await (const event of this.store.watchConfigurations({ afterSeq: this.lastSeq, signal: this.stop.signal })) this.apply(event);
        return;
      } catch (error) {
        if (this.stop.signal.aborted) return;
        this.log.error({ err: error }, 'configuration watch failed; restarting in 1s');
        await new Promise((resolve) => setTimeout(resolve, 1000));
      }
    }
  }

  /** Updates the cache and sends a fresh desired state to every agent tracking the configuration. */
  private apply(event: ConfigurationEvent): void {
    this.lastSeq = Math.max(this.lastSeq, event.seq);
    if (event.type === 'put') this.configurations.set(event.name, event.configuration);
    else this.configurations.delete(event.name);
    for (const session of this.sessions.values()) {
      if (session.tracked.includes(event.name)) this.push(session);
    }
  }

  /** The desired state of an agent from the hub's cache. */
  desiredFor(agent: { name: string; tracks: readonly string[]; labels: Readonly<Record<string, string>> }): DesiredState {
    const tracked = trackedConfigurations(agent, this.assignments);
    return buildDesired(agent.name, tracked, (name) => this.configurations.get(name), this.lastSeq);
  }

  /** Sends a session its current desired state. */
  private push(session: AgentSession): void {
    session.sendDesired(this.desiredFor({ name: session.agent, tracks: session.tracks, labels: session.labels }));
  }

  /** Takes over a new channel of an agent: replaces its older one and sends the desired state. */
  attach(socket: WebSocket, record: AgentRecord): AgentSession {
    const session = new AgentSession(socket, { name: record.name, labels: record.labels, tracks: record.tracks }, {
      onStatus: (s, report) => this.status(s, report),
      onOrderReply: (s, reply) => this.router.fromAgent(s.agent, reply),
      onHeard: (s) => this.presence.heartbeat(s.agent, s.id),
      onMetrics: (s, summary) => this.recordMetrics(s.agent, summary),
      onClose: (s) => this.detach(s),
    }, this.log);
    const older = this.sessions.get(record.name);
    this.sessions.set(record.name, session);
    this.presence.connect(record.name, session.id);
    this.bus.claim(record.name, session.id, Date.now());
    older?.close(CLOSE.replaced, 'replaced by a newer connection');
    void touchAgent(this.store, record.name);
    this.log.info({ agent: record.name, session: session.id }, 'agent channel opened');
    void this.pushUnlessRevoked(session, record);
    return session;
  }

  /**
   * A revoke that lands between the upgrade's authentication and `attach` finds no session to
   * close; so the record is read once more after attaching, before the first desired state goes
   * out, and the session closes if the agent was revoked, or enrolled again with another key, meanwhile.
   */
  private async pushUnlessRevoked(session: AgentSession, authenticated: AgentRecord): Promise<void> {
    const record = await this.store.getAgent(session.agent).catch(() => authenticated);
    if (this.sessions.get(session.agent) !== session) return;
    if (record === undefined || record.revokedAt || record.publicKey !== authenticated.publicKey) {
      this.closeRevoked(session.agent);
      return;
    }
    this.push(session);
  }

  /** Forgets a closed session (unless a newer one replaced it). */
  private detach(session: AgentSession): void {
    this.presence.disconnect(session.agent, session.id);
    if (this.sessions.get(session.agent) !== session) return;
    this.sessions.delete(session.agent);
    this.bus.release(session.agent, session.id);
    this.router.agentClosed(session.agent);
    if (!this.stop.signal.aborted) void touchAgent(this.store, session.agent);
    this.log.info({ agent: session.agent, session: session.id }, 'agent channel closed');
  }

  /** Stores a status report from the channel; new labels may change what the agent tracks. */
  private async status(session: AgentSession, report: StatusReport): Promise<void> {
    const { record, selectionChanged } = await recordStatus(this.store, session.agent, report);
    if (selectionChanged) this.agentChanged(record);
  }

  /**
   * An agent's labels or tracks changed (status report, re-enrollment): re-send its desired state
   * if it differs, or tell the replica holding it.
   */
  agentChanged(record: AgentRecord): void {
    if (this.sessions.has(record.name)) this.applyAgentChange(record);
    else if (this.bus.holder(record.name)) this.bus.broadcast({ type: 'agent', name: record.name, labels: record.labels, tracks: record.tracks });
  }

  /** Re-sends a local agent's desired state if its new labels or tracks change what it tracks. */
  private applyAgentChange(record: Pick<AgentRecord, 'name' | 'labels' | 'tracks'>): void {
    const session = this.sessions.get(record.name);
    if (!session) return;
    session.labels = record.labels;
    session.tracks = record.tracks;
    const tracked = trackedConfigurations(record, this.assignments);
    if (tracked.join('\n') !== session.tracked.join('\n')) this.push(session);
  }

  /** Assignments changed here: reload them, and tell the other replicas to do the same. */
  async assignmentsChanged(): Promise<void> {
    this.bus.broadcast({ type: 'assignments' });
    await this.reloadAssignments();
  }

  /** Reloads the assignments and re-sends desired states whose set of configurations changed. */
  private async reloadAssignments(): Promise<void> {
    this.assignments = parseAssignments(await this.store.listAssignments());
    for (const session of this.sessions.values()) {
      const tracked = trackedConfigurations(session, this.assignments);
      if (tracked.join('\n') !== session.tracked.join('\n')) this.push(session);
    }
  }

  /** The open channel of an agent, if it has one on this process. */
  localSession(name: string): AgentSession | undefined {
    const session = this.sessions.get(name);
    return session?.open ? session : undefined;
  }

  /** Where to send an order for an agent: its channel here, a proxy to the replica holding it, or none. */
  session(name: string): Pick<AgentSession, 'send'> | undefined {
    return this.router.session(name);
  }

  /** Routes replies to order `id` to `listener` until the returned function is called. */
  listenOrder(id: string, listener: OrderListener): () => void {
    return this.router.listenOrder(id, listener);
  }

  /** Closes an agent's channel at once (it was revoked), on whichever replica holds it. */
  revoke(name: string): void {
    this.bus.broadcast({ type: 'revoke', name });
    this.closeRevoked(name);
  }

  private closeRevoked(name: string): void {
    this.sessions.get(name)?.close(CLOSE.revoked, 'agent revoked', 200);
    this.presence.forget(name);
    this.metrics.forget(name);
  }

  /** What the bus calls: commands and replies for orders, and the other replicas' changes. */
  private busHandlers(): BusHandlers {
    return {
      deliver: (agent, command, origin) => this.router.deliver(agent, command, origin),
      reply: (agent, reply) => this.router.remoteReply(agent, reply),
      moved: (agent, replica) => this.router.moved(agent, replica),
      superseded: (agent, session) => {
        const current = this.sessions.get(agent);
        if (current?.id === session) current.close(CLOSE.replaced, 'replaced by a newer connection to another server');
      },
      event: (event) => this.clusterEvent(event),
    };
  }

  /** Keeps a summary from an agent held here, and shares it with the other replicas (their `strata top`). */
  private recordMetrics(agent: string, summary: MetricsSummary): void {
    if (this.metrics.record(agent, summary) && this.bus.peers().length > 0) this.bus.broadcast({ type: 'metrics', name: agent, summary });
  }

  /** Applies a change another replica made to the agents held here. */
  private clusterEvent(event: ClusterEvent): void {
    if (event.type === 'metrics') return void this.metrics.record(event.name, event.summary);
    if (event.type === 'revoke') return this.closeRevoked(event.name);
    if (event.type === 'agent') return this.applyAgentChange(event);
    this.reloadAssignments().catch((error: unknown) => this.log.error({ err: error }, 'reloading assignments after another replica changed them failed'));
  }

  /** Pings every session and closes the ones silent for too long. */
  private heartbeat(): void {
    const now = Date.now();
    this.router.sweep(now);
    for (const session of this.sessions.values()) {
      if (now - session.lastHeard > this.timing.silenceTimeoutMs) session.close(CLOSE.silent, 'no message for too long');
      else session.send({ type: 'ping', at: new Date(now).toISOString() });
    }
  }

  /** How many channels are open. */
  get size(): number {
    return this.sessions.size;
  }

  /** Stops the watch and the timer and closes every channel promptly (cut off after 1 s). */
  async close(): Promise<void> {
    this.stop.abort();
    clearInterval(this.timer);
    for (const session of this.sessions.values()) session.close(CLOSE.goingAway, 'server shutting down', 1000);
    await this.watching;
    await this.bus.close();
  }
}
