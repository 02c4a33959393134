/**
 * Recent metrics summaries per agent, as the agents sent them on their channels: a bounded ring
 * per agent, in memory only. With several server replicas each keeps what its own connected
 * agents sent; nothing is persisted, so a restart starts empty and fills within one interval.
 */
import type { MetricsSummary } from '../../protocol/metrics.ts';

/** Summaries kept per agent (10 minutes at the default 10 s interval). */
export const DEFAULT_HISTORY_LENGTH = 60;

/** A ring of recent summaries per agent. */
export class MetricsHistory {
  readonly keep: number;
  private readonly rings = new Map<string, MetricsSummary[]>();

  constructor(keep = DEFAULT_HISTORY_LENGTH) {
    this.keep = keep;
  }

  /** Adds a summary, dropping the oldest beyond `keep`. */
  record(agent: string, summary: MetricsSummary): void {
    let ring = this.rings.get(agent);
    if (!ring) this.rings.set(agent, (ring = []));
    ring.push(summary);
    if (ring.length > this.keep) ring.splice(0, ring.length - this.keep);
  }

  /** The agent's summaries, oldest first (a copy). */
  history(agent: string): MetricsSummary[] {
    return [...(this.rings.get(agent) ?? [])];
  }

  /** The agent's latest summary. */
  latest(agent: string): MetricsSummary | undefined {
    return this.rings.get(agent)?.at(-1);
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
