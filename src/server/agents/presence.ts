/**
 * Which agents hold a channel and when each was last heard from. This process's own sessions are
 * kept here; an agent held by another replica is looked up through the cluster bus (`remote`), so
 * every replica answers the same (see `src/server/cluster/`).
 */
import type { RemoteHolder } from '../cluster/bus.ts';

/** What the server knows about one agent's connection. */
export interface PresenceInfo {
  online: boolean;
  /** When the agent last sent anything on its channel (ISO time), if it has since this server started. */
  lastHeartbeat?: string;
  connectedAt?: string;
  /** The server replica holding the agent's channel, while online. */
  replica?: string;
}

interface Entry {
  session: string;
  connectedAt: number;
  lastHeartbeat: number;
  online: boolean;
}

/** Connected agents and their last heartbeat, keyed by agent name. */
export class Presence {
  private readonly entries = new Map<string, Entry>();
  private readonly remote: (name: string) => RemoteHolder | undefined;
  private readonly self: string | undefined;

  /** `remote` says which other replica holds an agent (none in a single server); `self` is this replica's id. */
  constructor(remote: (name: string) => RemoteHolder | undefined = () => undefined, self?: string) {
    this.remote = remote;
    this.self = self;
  }

  /** Records that `session` of agent `name` connected; it replaces any older session. */
  connect(name: string, session: string, now = Date.now()): void {
    this.entries.set(name, { session, connectedAt: now, lastHeartbeat: now, online: true });
  }

  /** Records that the agent was heard from on `session`. */
  heartbeat(name: string, session: string, now = Date.now()): void {
    const entry = this.entries.get(name);
    if (entry?.session === session) entry.lastHeartbeat = now;
  }

  /** Records that `session` closed; a newer session of the same agent stays online. */
  disconnect(name: string, session: string): void {
    const entry = this.entries.get(name);
    if (entry?.session === session) entry.online = false;
  }

  /** Forgets an agent (it was revoked). */
  forget(name: string): void {
    this.entries.delete(name);
  }

  /**
   * The presence of one agent: online here, else online on another replica (heard as recently as
   * that replica last announced itself, since it closes silent channels), else offline.
   */
  get(name: string): PresenceInfo {
    const entry = this.entries.get(name);
    if (!entry?.online) {
      const holder = this.remote(name);
      if (holder) return { online: true, lastHeartbeat: new Date(holder.heardAt).toISOString(), connectedAt: new Date(holder.connectedAt).toISOString(), replica: holder.replica };
    }
    if (!entry) return { online: false };
    return {
      online: entry.online, lastHeartbeat: new Date(entry.lastHeartbeat).toISOString(),
      ...(entry.online ? { connectedAt: new Date(entry.connectedAt).toISOString(), ...(this.self ? { replica: this.self } : {}) } : {}),
    };
  }

  /** How many agents are online on this replica. */
  onlineCount(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.online) count += 1;
    return count;
  }
}
