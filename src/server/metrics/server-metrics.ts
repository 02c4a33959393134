/**
 * The server's own Prometheus metrics, with prom-client on a registry per app (never the global
 * one, so several apps in one process stay apart): connected agents, orders started and finished
 * by verb and outcome, deploys by phase (from the agents' status reports), HTTP request latency by
 * route and status, store sizes, and the process metrics prom-client collects. Gauges that need
 * the store are computed when scraped, so they hold across replicas and restarts.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Logger } from '../../lib/logger.ts';
import { PHASES } from '../../protocol/agent.ts';
import type { Store } from '../../store/contract.ts';
import { statusesOf } from '../agents/status.ts';
import type { FleetHub } from '../channel/hub.ts';

/** An order's outcome: every host succeeded, some did, or none did. */
export type OrderOutcome = 'ok' | 'partial' | 'failed';

/** Latency buckets in seconds, from a cached read to a large upload. */
const LATENCY_BUCKETS = [0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

/** The metrics of one app. */
export class ServerMetrics {
  readonly registry = new Registry();
  private readonly ordersStarted: Counter<'verb'>;
  private readonly ordersFinished: Counter<'verb' | 'outcome'>;
  private readonly requests: Histogram<'method' | 'route' | 'status'>;
  private readonly store: Store;
  private readonly log: Logger;

  constructor(deps: { store: Store; hub: FleetHub; log: Logger }) {
    this.store = deps.store;
    this.log = deps.log;
    const registers = [this.registry];
    collectDefaultMetrics({ register: this.registry });
    const hub = deps.hub;
    new Gauge({
      name: 'strata_connected_agents', help: 'Agents with an open channel to this server process.', registers,
      collect() {
        this.set(hub.size);
      },
    });
    this.ordersStarted = new Counter({ name: 'strata_orders_started_total', help: 'Orders sent to agents, by verb.', labelNames: ['verb'], registers });
    this.ordersFinished = new Counter({ name: 'strata_orders_finished_total', help: 'Orders finished, by verb and outcome (ok: every host succeeded, partial, failed: none did).', labelNames: ['verb', 'outcome'], registers });
    this.requests = new Histogram({ name: 'strata_http_request_duration_seconds', help: 'HTTP request latency, by method, route and status.', labelNames: ['method', 'route', 'status'], buckets: LATENCY_BUCKETS, registers });
    const store = deps.store;
    new Gauge({
      name: 'strata_deploys', help: 'Tracked configurations on agents (not revoked), by the phase the agents last reported.', labelNames: ['phase'], registers,
      async collect() {
        const counts = new Map<string, number>(PHASES.map((phase) => [phase, 0]));
        for (const agent of await store.listAgents()) {
          if (agent.revokedAt) continue;
          for (const status of statusesOf(agent).values()) counts.set(status.phase, (counts.get(status.phase) ?? 0) + 1);
        }
        for (const [phase, count] of counts) this.set({ phase }, count);
      },
    });
    new Gauge({
      name: 'strata_store_objects', help: 'Objects in the store, by kind.', labelNames: ['kind'], registers,
      async collect() {
        const [components, configurations, agents] = await Promise.all([store.listComponents(), store.listConfigurations(), store.listAgents()]);
        this.set({ kind: 'components' }, components.length);
        this.set({ kind: 'versions' }, components.reduce((sum, c) => sum + c.versionCount, 0));
        this.set({ kind: 'configurations' }, configurations.length);
        this.set({ kind: 'agents' }, agents.filter((a) => !a.revokedAt).length);
        this.set({ kind: 'revoked_agents' }, agents.filter((a) => a.revokedAt).length);
      },
    });
    new Gauge({
      name: 'strata_metrics_history_agents', help: 'Agents whose metrics summaries this server process keeps in memory.', registers,
      collect() {
        this.set(hub.metrics.size);
      },
    });
  }

  /** Records one finished HTTP request. */
  observeRequest(method: string, route: string, status: number, seconds: number): void {
    this.requests.observe({ method, route, status: String(status) }, seconds);
  }

  /** Counts an order as started, and as finished with its outcome once `running` settles. */
  trackOrder(verb: string, id: string, running: Promise<void>): void {
    this.ordersStarted.inc({ verb });
    void running.then(async () => {
      const summary = (await this.store.getOrder(id))?.summary;
      const outcome: OrderOutcome = !summary || summary.ok === 0 ? 'failed' : summary.failed === 0 ? 'ok' : 'partial';
      this.ordersFinished.inc({ verb, outcome });
    }).catch((error: unknown) => this.log.warn({ err: error, order: id }, 'could not count a finished order'));
  }

  /** The exposition text and its content type. */
  async render(): Promise<{ contentType: string; text: string }> {
    return { contentType: this.registry.contentType, text: await this.registry.metrics() };
  }
}
