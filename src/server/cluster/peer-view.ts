/**
 * What one replica knows about the others: which are alive (heard within the expiry) and which
 * agent sessions each holds. Pure bookkeeping, no I/O, so its rules are tested on their own:
 * - a peer is alive while it announces itself at least once per `expireMs`; when it stops, all
 *   its claims vanish at once (a dead replica leaves no stale presence);
 * - an agent claimed by several replicas is held by the newest session (greatest `connectedAt`,
 *   then session id), the same rule on every replica, so exactly one replica keeps it;
 * - each peer's claims carry a digest (XOR of per-claim hashes, kept incrementally) that the peer
 *   also announces: a mismatch means a lost message, and the caller fetches a fresh snapshot.
 */
import { createHash } from 'node:crypto';
import type { RemoteHolder } from './bus.ts';

/** Most claims kept for all peers together; beyond it new agents are ignored (NATS auth keeps strangers off these subjects). */
export const MAX_REMOTE_CLAIMS = 1_000_000;

/** One session an agent holds on a replica. */
export interface Claim {
  session: string;
  connectedAt: number;
}

/** True when claim `a` is newer than claim `b` (the rule every replica applies identically). */
export function newerClaim(a: Claim, b: Claim): boolean {
  return a.connectedAt !== b.connectedAt ? a.connectedAt > b.connectedAt : a.session > b.session;
}

/** A 64-bit hash of one claim, as a bigint. */
function claimHash(agent: string, session: string): bigint {
  return createHash('sha256').update(`${agent}\n${session}`).digest().readBigUInt64BE(0);
}

/** The claims one replica holds, with their count and digest kept up to date. */
export class ClaimSet {
  readonly claims = new Map<string, Claim>();
  private xor = 0n;

  /** Sets the agent's claim, replacing any other. */
  set(agent: string, claim: Claim): void {
    this.delete(agent);
    this.claims.set(agent, claim);
    this.xor ^= claimHash(agent, claim.session);
  }

  /** Removes the agent's claim (only the given session's, when one is named); true when removed. */
  delete(agent: string, session?: string): boolean {
    const existing = this.claims.get(agent);
    if (!existing || (session !== undefined && existing.session !== session)) return false;
    this.claims.delete(agent);
    this.xor ^= claimHash(agent, existing.session);
    return true;
  }

  /** The digest peers compare: 16 hex digits. */
  get digest(): string {
    return this.xor.toString(16).padStart(16, '0');
  }

  get size(): number {
    return this.claims.size;
  }
}

interface Peer {
  heardAt: number;
  claims: ClaimSet;
  /** The digest and count the peer announced last. */
  announced: { digest: string; count: number } | undefined;
}

/** Live peers and their claims, with the holder of every agent they hold. */
export class PeerView {
  private readonly peers = new Map<string, Peer>();
  /** Which peers claim each agent (usually one). */
  private readonly byAgent = new Map<string, Set<string>>();
  private readonly expireMs: number;

  constructor(expireMs: number) {
    this.expireMs = expireMs;
  }

  /** A peer announced itself; returns true when its announced digest differs from its claims held here. */
  beat(replica: string, announced: { digest: string; count: number }, now = Date.now()): boolean {
    const peer = this.peer(replica, now);
    peer.heardAt = now;
    peer.announced = announced;
    return peer.claims.digest !== announced.digest || peer.claims.size !== announced.count;
  }

  /** A peer claims a session of an agent (replacing its earlier one); false when over MAX_REMOTE_CLAIMS. */
  claim(replica: string, agent: string, claim: Claim, now = Date.now()): boolean {
    if (!this.byAgent.has(agent) && this.byAgent.size >= MAX_REMOTE_CLAIMS) return false;
    const peer = this.peer(replica, now);
    peer.heardAt = Math.max(peer.heardAt, now);
    peer.claims.set(agent, claim);
    let holders = this.byAgent.get(agent);
    if (!holders) this.byAgent.set(agent, (holders = new Set()));
    holders.add(replica);
    return true;
  }

  /** A peer released a session of an agent (ignored when it holds a different session by now). */
  release(replica: string, agent: string, session: string): void {
    const peer = this.peers.get(replica);
    if (!peer?.claims.delete(agent, session)) return;
    this.unindex(replica, agent);
  }

  /** Replaces everything a peer holds with a snapshot of its claims. */
  replace(replica: string, claims: Iterable<[string, Claim]>, now = Date.now()): void {
    const peer = this.peer(replica, now);
    for (const agent of [...peer.claims.claims.keys()]) {
      peer.claims.delete(agent);
      this.unindex(replica, agent);
    }
    for (const [agent, claim] of claims) this.claim(replica, agent, claim, now);
  }

  /** Peers not heard within the expiry (the caller drops them). */
  silent(now = Date.now()): string[] {
    return [...this.peers].filter(([, peer]) => now - peer.heardAt > this.expireMs).map(([replica]) => replica);
  }

  /** The agents a peer claims. */
  agentsOf(replica: string): string[] {
    return [...(this.peers.get(replica)?.claims.claims.keys() ?? [])];
  }

  /** Forgets one peer (it said goodbye, or went silent); returns the agents it held. */
  drop(replica: string): string[] {
    const peer = this.peers.get(replica);
    if (!peer) return [];
    this.peers.delete(replica);
    const agents = [...peer.claims.claims.keys()];
    for (const agent of agents) this.unindex(replica, agent);
    return agents;
  }

  /** The peer holding the agent's newest session, if any. */
  holder(agent: string): RemoteHolder | undefined {
    let best: RemoteHolder | undefined;
    for (const replica of this.byAgent.get(agent) ?? []) {
      const peer = this.peers.get(replica)!;
      const claim = peer.claims.claims.get(agent)!;
      if (!best || newerClaim(claim, best)) best = { replica, session: claim.session, connectedAt: claim.connectedAt, heardAt: peer.heardAt };
    }
    return best;
  }

  /** Whether a peer is known (alive as far as this replica knows). */
  has(replica: string): boolean {
    return this.peers.has(replica);
  }

  /** Ids of the live peers. */
  replicas(): string[] {
    return [...this.peers.keys()].sort();
  }

  /** How many distinct agents the peers hold. */
  agentCount(): number {
    return this.byAgent.size;
  }

  private peer(replica: string, now: number): Peer {
    let peer = this.peers.get(replica);
    if (!peer) this.peers.set(replica, (peer = { heardAt: now, claims: new ClaimSet(), announced: undefined }));
    return peer;
  }

  private unindex(replica: string, agent: string): void {
    const holders = this.byAgent.get(agent);
    holders?.delete(replica);
    if (holders?.size === 0) this.byAgent.delete(agent);
  }
}
