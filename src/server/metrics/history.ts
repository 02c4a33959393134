/**
 * Recent metrics summaries per agent, as the agents sent them on their channels: a bounded ring
 * per agent, in memory only. With several server replicas each keeps what its own connected
 * agents sent; nothing is persisted, so a restart starts empty and fills within one interval.
 *
 * Memory is bounded twice: at most `keep` summaries per agent, and at most `maxTotal` over all
 * agents (a large fleet keeps a shorter history each). Summaries are kept as their JSON text
 * (about 500 bytes) rather than as objects, which take several times that; only the latest of
 * each agent is also kept parsed, for `strata top`. Summaries arriving faster than
 * `minSpacingMs` apart (agents sample at most once a second) are dropped.
 */
import type { MetricsSummary } from '../../protocol/metrics.ts';

/** Summaries kept per agent (10 minutes at the default 10 s interval). */
export const DEFAULT_HISTORY_LENGTH = 60;
/** Summaries kept over all agents (about 50 MB of JSON text). */
export const DEFAULT_HISTORY_TOTAL = 100_000;

interface Ring {
  texts: string[];
  latest: MetricsSummary;
  receivedAt: number;
}

/** A ring of recent summaries per agent. */
export class MetricsHistory {
  readonly keep: number;
  private readonly maxTotal: number;
  private readonly minSpacingMs: number;
  private readonly rings = new Map<string, Ring>();

  constructor(options: { keep?: number; maxTotal?: number; minSpacingMs?: number } = {}) {
    this.keep = options.keep ?? DEFAULT_HISTORY_LENGTH;
    this.maxTotal = options.maxTotal ?? DEFAULT_HISTORY_TOTAL;
    this.minSpacingMs = options.minSpacingMs ?? 500;
  }

  /** How many summaries each agent keeps now: `keep`, or less when the fleet is large. */
  get perAgent(): number {
    return Math.max(1, Math.min(this.keep, Math.floor(this.maxTotal / Math.max(1, this.rings.size))));
  }

  /** Adds a summary, dropping the oldest beyond the per-agent bound; false when it came too soon after the last. */
  record(agent: string, summary: MetricsSummary, now = Date.now()): boolean {
    let ring = this.rings.get(agent);
    if (ring && now - ring.receivedAt < this.minSpacingMs) return false;
    if (!ring) {
      ring = { texts: [], latest: summary, receivedAt: now };
      this.rings.set(agent, ring);
    }
    ring.texts.push(JSON.stringify(summary));
    ring.latest = summary;
    ring.receivedAt = now;
    const bound = this.perAgent;
    if (ring.texts.length > bound) ring.texts.splice(0, ring.texts.length - bound);
    return true;
  }

  /** The agent's summaries, oldest first. */
  history(agent: string): MetricsSummary[] {
    return (this.rings.get(agent)?.texts ?? []).map((text) => JSON.parse(text) as MetricsSummary);
  }

  /** The agent's latest summary. */
  latest(agent: string): MetricsSummary | undefined {
    return this.rings.get(agent)?.latest;
  }

  /** Forgets an agent (it was revoked). */
  forget(agent: string): void {
    this.rings.delete(agent);
  }

  /** How many agents have history. */
  get size(): number {
    return this.rings.size;
  }
}
