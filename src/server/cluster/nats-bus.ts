/**
 * The cluster bus on NATS core subjects (see `bus.ts` for the semantics, `messages.ts` for the
 * subjects). Presence needs no storage: every replica announces itself (`beat`) every `beatMs`
 * with the count and digest of the sessions it holds, and broadcasts each claim and release as it
 * happens. Every replica keeps the others' claims in memory (`PeerView`); a replica not heard for
 * `expireMs` is dead and its claims vanish, so a killed replica leaves no stale presence. A digest
 * that differs from what a receiver holds (a message lost while NATS reconnected, a replica that
 * just started) makes the receiver fetch that replica's claims again, page by page; presence
 * converges within one beat of any loss.
 *
 * Orders travel on `to.<replica>`: the origin sends `command` to the holder, the holder sends the
 * agent's `reply` back. NATS keeps one publisher's messages in order, so a reply published before
 * a release arrives before it.
 */
import type { NatsConnection, Subscription, Msg } from '@nats-io/transport-node';
import type { z } from 'zod';
import type { Logger } from '../../lib/logger.ts';
import type { OrderReply } from '../channel/session.ts';
import { newReplicaId, type AgentCommand, type BusHandlers, type ClusterBus, type ClusterEvent, type RemoteHolder } from './bus.ts';
import { BUS_VERSION, BeatSchema, ByeSchema, DirectSchema, EventSchema, PresenceSchema, SNAPSHOT_PAGE, SnapshotReplySchema, SnapshotRequestSchema, busSubjects } from './messages.ts';
import { ClaimSet, PeerView, newerClaim, type Claim } from './peer-view.ts';

/** Timing of the bus; tests shorten it. */
export interface BusTiming {
  /** How often this replica announces itself. */
  beatMs: number;
  /** A replica silent this long is dead. */
  expireMs: number;
  /** How long one snapshot page may take. */
  requestTimeoutMs: number;
}

/** The defaults: a beat every second, dead after 5 s of silence. */
export const DEFAULT_BUS_TIMING: BusTiming = { beatMs: 1000, expireMs: 5000, requestTimeoutMs: 5000 };

/** Most snapshot pages fetched in one sync (SNAPSHOT_PAGE × this agents per replica). */
const MAX_SNAPSHOT_PAGES = 500;
/** How long closing waits for the goodbye to leave before cutting the connection (NATS may be away). */
const CLOSE_DRAIN_MS = 2000;

/** The cluster bus over one NATS connection, which it owns and closes. */
export class NatsBus implements ClusterBus {
  readonly replica: string;
  readonly kind = 'nats';
  private readonly nc: NatsConnection;
  private readonly log: Logger;
  private readonly timing: BusTiming;
  private readonly subjects: ReturnType<typeof busSubjects>;
  private readonly mine = new ClaimSet();
  private readonly view: PeerView;
  private readonly syncing = new Set<string>();
  private readonly subscriptions: Subscription[] = [];
  private handlers: BusHandlers | undefined;
  private timer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(nc: NatsConnection, options: { log: Logger; prefix?: string; timing?: BusTiming; replica?: string }) {
    this.nc = nc;
    this.log = options.log;
    this.timing = options.timing ?? DEFAULT_BUS_TIMING;
    this.replica = options.replica ?? newReplicaId();
    this.subjects = busSubjects(options.prefix ?? 'strata');
    this.view = new PeerView(this.timing.expireMs);
  }

  async start(handlers: BusHandlers): Promise<void> {
    this.handlers = handlers;
    const s = this.subjects;
    this.listen(s.beat, BeatSchema, (m) => this.onBeat(m));
    this.listen(s.bye, ByeSchema, (m) => this.onBye(m.replica));
    this.listen(s.presence, PresenceSchema, (m) => this.onPresence(m));
    this.listen(s.event, EventSchema, (m) => {
      if (m.replica !== this.replica) handlers.event(m.event as ClusterEvent);
    });
    this.listen(s.to(this.replica), DirectSchema, (m) => {
      if (m.kind === 'command') handlers.deliver(m.agent, m.command as AgentCommand, m.origin);
      else handlers.reply(m.agent, m.reply as OrderReply);
    });
    this.listen(s.snapshot(this.replica), SnapshotRequestSchema, (m, msg) => this.answerSnapshot(m.offset, msg));
    // The subscriptions must be registered on the server before the first beat invites peers to sync.
    await this.nc.flush();
    void this.watchStatus();
    this.beat();
    this.timer = setInterval(() => this.tick(), this.timing.beatMs);
    this.timer.unref();
    this.log.info({ replica: this.replica, beatMs: this.timing.beatMs, expireMs: this.timing.expireMs }, 'cluster bus started');
  }

  claim(agent: string, session: string, connectedAt: number): void {
    const claim = { session, connectedAt };
    this.mine.set(agent, claim);
    this.publish(this.subjects.presence, { v: BUS_VERSION, replica: this.replica, op: 'claim', agent, session, connectedAt });
    // Another replica may already hold a newer session (the same rule runs there on our claim).
    const other = this.view.holder(agent);
    if (other && newerClaim(other, claim)) this.handlers?.superseded(agent, session);
  }

  release(agent: string, session: string): void {
    if (!this.mine.delete(agent, session)) return;
    this.publish(this.subjects.presence, { v: BUS_VERSION, replica: this.replica, op: 'release', agent, session });
  }

  holder(agent: string): RemoteHolder | undefined {
    return this.view.holder(agent);
  }

  remoteCount(): number {
    return this.view.agentCount();
  }

  peers(): string[] {
    return this.view.replicas();
  }

  sendToAgent(replica: string, agent: string, command: AgentCommand): void {
    this.publish(this.subjects.to(replica), { v: BUS_VERSION, kind: 'command', origin: this.replica, agent, command });
  }

  replyToOrigin(origin: string, agent: string, reply: OrderReply): void {
    this.publish(this.subjects.to(origin), { v: BUS_VERSION, kind: 'reply', agent, reply });
  }

  broadcast(event: ClusterEvent): void {
    this.publish(this.subjects.event, { v: BUS_VERSION, replica: this.replica, event });
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    if (this.nc.isClosed()) return;
    this.publish(this.subjects.bye, { v: BUS_VERSION, replica: this.replica });
    let timer: NodeJS.Timeout | undefined;
    const drained = await Promise.race([
      this.nc.drain().then(() => true, () => false),
      new Promise<false>((resolve) => (timer = setTimeout(() => resolve(false), CLOSE_DRAIN_MS))),
    ]);
    clearTimeout(timer);
    // A drain that failed or timed out (NATS away) must not leave the client reconnecting forever.
    if (!drained || !this.nc.isClosed()) await this.nc.close().catch((error: unknown) => this.log.warn({ err: error }, 'closing the cluster bus connection failed'));
  }

  /** Subscribes to a subject, handing each valid message to `handle`; invalid ones are logged and dropped. */
  private listen<S extends z.ZodType>(subject: string, schema: S, handle: (message: z.output<S>, msg: Msg) => void): void {
    const subscription = this.nc.subscribe(subject, {
      callback: (error, msg) => {
        if (error) return this.log.warn({ err: error, subject }, 'cluster subscription failed');
        let parsed;
        try {
          parsed = schema.safeParse(msg.json());
        } catch {
          return this.log.warn({ subject }, 'cluster message is not JSON; ignored');
        }
        if (!parsed.success) return this.log.warn({ subject, issue: parsed.error.issues[0]?.message }, 'cluster message refused');
        try {
          handle(parsed.data, msg);
        } catch (error) {
          this.log.error({ err: error, subject }, 'handling a cluster message failed');
        }
      },
    });
    this.subscriptions.push(subscription);
  }

  /** Publishes JSON; while NATS is away the client buffers, and a closed connection drops it. */
  private publish(subject: string, message: unknown): void {
    if (this.closed && !subject.endsWith('.bye')) return;
    try {
      this.nc.publish(subject, JSON.stringify(message));
    } catch (error) {
      this.log.warn({ err: error, subject }, 'cluster message not sent');
    }
  }

  private beat(): void {
    this.publish(this.subjects.beat, { v: BUS_VERSION, replica: this.replica, digest: this.mine.digest, count: this.mine.size });
  }

  /** Announces this replica and forgets the peers that went silent. */
  private tick(): void {
    this.beat();
    for (const replica of this.view.silent()) {
      const agents = this.view.agentsOf(replica);
      this.changing(agents, () => this.view.drop(replica));
      this.log.warn({ peer: replica, agents: agents.length }, 'replica went silent; its agents are offline here until they reconnect');
    }
  }

  private onBeat(beat: z.output<typeof BeatSchema>): void {
    if (beat.replica === this.replica) return;
    const known = this.view.has(beat.replica);
    if (this.view.beat(beat.replica, beat)) void this.sync(beat.replica);
    if (!known) this.log.info({ peer: beat.replica }, 'replica joined');
  }

  private onBye(replica: string): void {
    if (replica === this.replica || !this.view.has(replica)) return;
    this.changing(this.view.agentsOf(replica), () => this.view.drop(replica));
    this.log.info({ peer: replica }, 'replica left');
  }

  private onPresence(message: z.output<typeof PresenceSchema>): void {
    if (message.replica === this.replica) return;
    const { agent, replica } = message;
    if (message.op === 'release') return this.changing([agent], () => this.view.release(replica, agent, message.session));
    const claim: Claim = { session: message.session, connectedAt: message.connectedAt };
    this.changing([agent], () => this.view.claim(replica, agent, claim));
    const ours = this.mine.claims.get(agent);
    if (ours && newerClaim(claim, ours)) this.handlers?.superseded(agent, ours.session);
  }

  /**
   * Applies a change to the view and tells the hub about every one of `agents` whose holder was a
   * peer and is now another or none: orders sent through that peer will get no answer.
   */
  private changing(agents: Iterable<string>, change: () => unknown): void {
    const before = new Map<string, RemoteHolder | undefined>();
    for (const agent of agents) before.set(agent, this.view.holder(agent));
    change();
    for (const [agent, was] of before) {
      const now = this.view.holder(agent);
      if (was && (!now || now.replica !== was.replica || now.session !== was.session)) this.handlers?.moved(agent, was.replica);
    }
  }

  /** Fetches a peer's claims page by page and replaces what this replica holds for it. */
  private async sync(replica: string): Promise<void> {
    if (this.syncing.has(replica) || this.closed) return;
    this.syncing.add(replica);
    try {
      const claims: [string, Claim][] = [];
      for (let page = 0, offset = 0; page < MAX_SNAPSHOT_PAGES; page++) {
        const answer = await this.nc.request(this.subjects.snapshot(replica), JSON.stringify({ v: BUS_VERSION, offset }), { timeout: this.timing.requestTimeoutMs });
        const reply = SnapshotReplySchema.parse(answer.json());
        for (const [agent, session, connectedAt] of reply.claims) claims.push([agent, { session, connectedAt }]);
        offset += reply.claims.length;
        if (reply.claims.length === 0 || offset >= reply.total) break;
      }
      if (this.view.has(replica)) this.changing([...this.view.agentsOf(replica), ...claims.map(([agent]) => agent)], () => this.view.replace(replica, claims));
    } catch (error) {
      this.log.warn({ peer: replica, err: error }, 'could not fetch a replica\'s agents; the next beat retries');
    } finally {
      this.syncing.delete(replica);
    }
  }

  private answerSnapshot(offset: number, msg: Msg): void {
    const page = [...this.mine.claims].slice(offset, offset + SNAPSHOT_PAGE).map(([agent, claim]) => [agent, claim.session, claim.connectedAt]);
    msg.respond(JSON.stringify({ v: BUS_VERSION, total: this.mine.size, claims: page }));
  }

  /** Logs connection changes; after a reconnect, announces at once so peers resync quickly. */
  private async watchStatus(): Promise<void> {
    for await (const status of this.nc.status()) {
      if (status.type === 'disconnect') this.log.warn({ replica: this.replica }, 'cluster bus lost NATS; reconnecting');
      else if (status.type === 'reconnect') {
        this.log.info({ replica: this.replica }, 'cluster bus reconnected to NATS');
        this.beat();
      }
    }
  }
}
