/**
 * Which agents hold a channel to this server and when each was last heard from. In memory: with
 * several replicas (the NATS backend) the same interface will be shared across them.
 */

/** What the server knows about one agent's connection. */
export interface PresenceInfo {
  online: boolean;
  /** When the agent last sent anything on its channel (ISO time), if it has since this server started. */
  lastHeartbeat?: string;
  connectedAt?: string;
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

  /** The presence of one agent. */
  get(name: string): PresenceInfo {
    const entry = this.entries.get(name);
    if (!entry) return { online: false };
    return { online: entry.online, lastHeartbeat: new Date(entry.lastHeartbeat).toISOString(), ...(entry.online ? { connectedAt: new Date(entry.connectedAt).toISOString() } : {}) };
  }

  /** How many agents are online. */
  onlineCount(): number {
    let count = 0;
    for (const entry of this.entries.values()) if (entry.online) count += 1;
    return count;
  }
}
