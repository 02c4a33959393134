/**
 * The Strata agent, as a state machine:
 *
 *   starting → enrolling (first start only) → running → stopping → stopped
 *
 * While running it learns the desired state three ways — pushed over the channel on every
 * change, replayed by the server on every (re)connect, and re-read in full every poll interval
 * as ground truth — and hands each tracked configuration to its own ConfigWorker. Status
 * changes are reported to the server, batched. `runOnce` converges once, for scripts.
 * Orders arriving on the channel are run by an OrderDispatcher, within what the agent's own
 * config file (`agentConfig`) allows; they are answered before the channel closes on shutdown.
 * Services the workers supervise are left running on shutdown and re-adopted on the next start.
 */
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/logger.ts';
import { fullJitter, sleep } from '../lib/backoff.ts';
import { StrataError, isStrataError } from '../core/errors.ts';
import { ClientError, isClientError, isUnreachable } from '../lib/http-client.ts';
import type { ConfigStatus, DesiredState, ServiceStatus, StatusReport } from '../protocol/agent.ts';
import { collectInventory, enroll, loadIdentity, type Identity } from './identity.ts';
import { lockDirectory } from './lock.ts';
import { ServerApi, serverList } from './server-api.ts';
import { BlobCache } from './fetch/blob-cache.ts';
import { ConfigWorker, type WorkerSettings } from './config-worker.ts';
import { runChannel, type ChannelTiming } from './channel.ts';
import { emptyAgentConfig, type AgentConfig } from './agent-config.ts';
import { OrderDispatcher } from './orders/dispatcher.ts';
import { SyncRegistry } from './orders/sync-registry.ts';
import { MetricsSampler } from './metrics/sampler.ts';
import { summarize } from './metrics/summary.ts';
import type { MetricsListen } from './metrics/listen-address.ts';
import type { ServiceStatsSource } from './metrics/service-source.ts';
import type { MetricsEndpoint } from './metrics/endpoint.ts';
import { STRATA_VERSION } from '../lib/version.ts';

/** The agent's states. */
export type AgentState = 'starting' | 'enrolling' | 'running' | 'stopping' | 'stopped';

const TRANSITIONS: Record<AgentState, AgentState[]> = {
  starting: ['enrolling', 'running', 'stopping'],
  enrolling: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/**
 * How long `runOnce` (`strata agent --once`) keeps retrying a server it cannot reach, enrollment
 * and the desired-state read together, before it fails: long enough to ride out a server restart,
 * short enough that a script is never stuck (it can loop itself). An attempt under way when the
 * time runs out still gets its request timeout (30 s) against a server that never answers.
 */
export const ONCE_UNREACHABLE_MS = 20_000;

/** How the agent was asked to run (parsed once by the CLI). */
export interface AgentOptions {
  dir: string;
  server?: string;
  joinToken?: string;
  name?: string;
  tracks: string[];
  labels: Record<string, string>;
  hook?: string;
  hookTimeoutMs: number;
  pollMs: number;
  keep: number;
  limits: { maxFiles: number; maxBytes: number };
  agentEnv: Record<string, string | undefined>;
  log: Logger;
  retryBaseMs?: number;
  retryCapMs?: number;
  channelTiming?: ChannelTiming;
  /** What orders may do here (`--config`); without it, only ping and logs work. */
  agentConfig?: AgentConfig;
  /** Metrics: the sample interval and, when given, the local endpoint (`--metrics-listen`) and its token. */
  metrics?: { intervalMs: number; listen?: MetricsListen; token?: string };
  /** The supervised services' pids and restarts, for per-service metrics; the agent's own supervisors by default. */
  services?: ServiceStatsSource;
  /** Service supervisor timings (tests shorten them). */
  serviceTiming?: { pollMs?: number; stableMs?: number; settleMs?: number };
}

/** A running (or once-running) agent. */
export class Agent {
  private stateValue: AgentState = 'starting';
  private readonly options: AgentOptions;
  private readonly log: Logger;
  private readonly stop = new AbortController();
  private readonly workers = new Map<string, ConfigWorker>();
  private api: ServerApi | undefined;
  private cache: BlobCache | undefined;
  private unlock: (() => Promise<void>) | undefined;
  private reportTimer: NodeJS.Timeout | undefined;
  private reporting: Promise<void> = Promise.resolve();
  /** The blob cache trim in progress, if any (see scheduleCacheTrim). */
  private trimming: Promise<void> = Promise.resolve();
  private stopping: Promise<void> | undefined;
  private background: Promise<unknown>[] = [];
  private orders: OrderDispatcher | undefined;
  private sampler: MetricsSampler | undefined;
  private endpoint: MetricsEndpoint | undefined;
  /** Resolves when the agent must exit on its own (credentials revoked). */
  readonly refused: Promise<string>;
  private refuse!: (reason: string) => void;
  /** When `runOnce` stops retrying an unreachable server (never for the daemon). */
  private onceGiveUpAt = Infinity;
  /** This start enrolled the agent, so the server already has the labels and tracks given. */
  private enrolledNow = false;

  constructor(options: AgentOptions) {
    this.options = options;
    this.log = options.log;
    this.refused = new Promise((resolve) => (this.refuse = resolve));
  }

  /** The current state. */
  get state(): AgentState {
    return this.stateValue;
  }

  private transition(next: AgentState): void {
    if (!TRANSITIONS[this.stateValue].includes(next)) throw new Error(`illegal agent transition ${this.stateValue} → ${next}`);
    this.log.info({ from: this.stateValue, to: next }, `agent ${next}`);
    this.stateValue = next;
  }

  /** Locks the directory and enrolls if needed; shared by `start` and `runOnce`. */
  private async prepare(): Promise<ServerApi> {
    await mkdir(this.options.dir, { recursive: true, mode: 0o700 });
    this.unlock = await lockDirectory(this.options.dir);
    let identity: Identity | undefined = await loadIdentity(this.options.dir);
    if (identity && this.options.name && identity.name !== this.options.name) {
      throw new StrataError('BAD_REQUEST', `${this.options.dir} belongs to agent "${identity.name}", not "${this.options.name}"`);
    }
    if (!identity) {
      if (!this.options.joinToken || !this.options.server || !this.options.name) {
        throw new StrataError('BAD_REQUEST', `${this.options.dir} has no identity yet: the first start needs --server, --join-token and --name`);
      }
      this.transition('enrolling');
      // Every replica accepts the identity once one has enrolled it: an unreachable one is passed over.
      const servers = serverList(this.options.server!);
      identity = await this.withRetry('enroll', async (attempt) => enroll(this.options.dir, {
        server: servers[attempt % servers.length]!, remember: servers.join(','), joinToken: this.options.joinToken!, name: this.options.name!,
        labels: this.options.labels, tracks: this.options.tracks, inventory: await collectInventory(),
      }));
      this.enrolledNow = true;
      this.log.info({ name: identity.name }, 'enrolled');
    }
    this.api = new ServerApi(identity, this.options.server ?? identity.server);
    this.cache = new BlobCache({ dir: path.join(this.options.dir, 'cache'), source: this.api.blobSource() });
    return this.api;
  }

  /**
   * Retries an operation that failed because the server could not be reached, with backoff and
   * jitter, until `runOnce`'s deadline if there is one; anything else (a refusal, a wrong
   * fingerprint) fails at once.
   */
  private async withRetry<T>(what: string, run: (attempt: number) => Promise<T>): Promise<T> {
    for (let attempt = 0; ; attempt++) {
      try {
        return await run(attempt);
      } catch (error) {
        if (!isUnreachable(error)) throw error;
        if (this.stop.signal.aborted) throw error;
        const left = this.onceGiveUpAt - Date.now();
        if (left <= 0) {
          const attempts = attempt + 1;
          throw new ClientError(error.code, `could not reach the server to ${what} within ${ONCE_UNREACHABLE_MS / 1000} s (${attempts} ${attempts === 1 ? 'attempt' : 'attempts'}): ${error.message}`, { cause: error });
        }
        // The last attempt is made at the deadline, not skipped because a random wait overshot it.
        const wait = Math.min(fullJitter(attempt, 1000, 30_000), left);
        this.log.warn({ what, attempt, waitMs: wait, reason: (error as Error).message }, `${what}: server unreachable; retrying`);
        await sleep(wait, this.stop.signal);
      }
    }
  }

  private workerSettings(): WorkerSettings {
    return {
      dir: this.options.dir, cache: this.cache!, keep: this.options.keep, limits: this.options.limits,
      hookTimeoutMs: this.options.hookTimeoutMs, agentEnv: this.options.agentEnv, log: this.log,
      ...(this.options.hook ? { hook: this.options.hook } : {}),
      retryBaseMs: this.options.retryBaseMs ?? 5_000, retryCapMs: this.options.retryCapMs ?? 300_000,
      ...(this.options.serviceTiming ? { serviceTiming: this.options.serviceTiming } : {}),
      onStatus: () => this.scheduleReport(),
      onDeployed: () => this.scheduleCacheTrim(),
    };
  }

  /**
   * Removes cached blobs (and partial downloads) that no tracked configuration's desired state or
   * kept release uses, after each deploy, so the cache does not grow with every version ever
   * deployed. Blobs being downloaded are never touched; trims run one at a time.
   */
  private scheduleCacheTrim(): void {
    this.trimming = this.trimming.then(async () => {
      // A blob written once the trim started may be one a deploy fetched after `keep` was decided.
      const modifiedBefore = Date.now();
      const keep = new Set<string>();
      for (const worker of this.workers.values()) for (const blob of await worker.blobsInUse()) keep.add(blob);
      const removed = await this.cache!.collect(keep, { modifiedBefore });
      if (removed.length > 0) this.log.info({ removed }, 'removed cached blobs no kept release uses');
    }).catch((error: unknown) => this.log.warn({ err: error }, 'could not trim the blob cache'));
  }

  /** Hands a desired state to the workers, creating and retiring them as tracking changes. */
  private applyDesired(state: DesiredState, start: boolean): void {
    const wanted = new Set([...state.configurations.map((c) => c.name), ...state.missing]);
    for (const [name, worker] of this.workers) {
      if (wanted.has(name)) continue;
      this.workers.delete(name);
      void worker.stop();
      this.log.info({ configuration: name }, 'no longer tracked; its files stay in place');
    }
    for (const name of wanted) {
      let worker = this.workers.get(name);
      if (!worker) {
        worker = new ConfigWorker(name, this.workerSettings());
        this.workers.set(name, worker);
        if (start) worker.start();
      }
      worker.setDesired(state.configurations.find((c) => c.name === name));
    }
    this.scheduleReport();
  }

  /** Sends every worker's status soon, coalescing bursts of changes into one report. */
  private scheduleReport(): void {
    if (this.reportTimer || !this.api) return;
    this.reportTimer = setTimeout(() => {
      this.reportTimer = undefined;
      this.reporting = this.reporting.then(() => this.report());
    }, 100);
  }

  /** A status report of every worker, with the labels and tracks given on this start. */
  private async statusReport(): Promise<StatusReport> {
    const configurations: ConfigStatus[] = [...this.workers.values()].map((w) => w.current);
    // Flags given on this start replace what the server holds; a start without them keeps it.
    return {
      configurations, inventory: await collectInventory(),
      ...(Object.keys(this.options.labels).length > 0 ? { labels: this.options.labels } : {}),
      ...(this.options.tracks.length > 0 ? { tracks: this.options.tracks } : {}),
    };
  }

  private async report(): Promise<void> {
    try {
      await this.api!.report(await this.statusReport());
    } catch (error) {
      this.log.warn({ err: error }, 'status report failed; the next change or poll retries');
      if (isStrataError(error, 'UNAUTHENTICATED')) this.refuse((error as Error).message);
    }
  }

  /** Daemon mode: runs until `shutdown`, or until the server refuses the agent. */
  async start(): Promise<void> {
    const api = await this.prepare();
    this.transition('running');
    const signal = this.stop.signal;
    this.orders = new OrderDispatcher({
      dir: this.options.dir, name: api.identity.name, config: this.options.agentConfig ?? emptyAgentConfig(),
      agentEnv: this.options.agentEnv, log: this.log, syncs: new SyncRegistry(),
      restartService: (configuration) => this.restartService(configuration),
    });
    const sampler = this.startMetrics();
    await this.startEndpoint(api.identity.name);
    this.background.push(runChannel({
      api, log: this.log, signal, orders: this.orders,
      metrics: {
        latest: () => (sampler.latestMeasured ? summarize(sampler.latestMeasured) : undefined),
        subscribe: (listener) => sampler.subscribe((sample) => listener(summarize(sample))),
      },
      onDesired: (state) => this.applyDesired(state, true),
      onRefused: (reason) => this.refuse(reason),
      ...(this.options.channelTiming ? { timing: this.options.channelTiming } : {}),
    }));
    this.background.push(this.pollLoop(api, signal));
  }

  /** Starts sampling the machine every metrics interval (off the request path, on an unref'd timer). */
  private startMetrics(): MetricsSampler {
    this.sampler = new MetricsSampler({
      intervalMs: this.options.metrics?.intervalMs, log: this.log,
      // The supervised services of this agent, unless a test gives its own source.
      services: this.options.services ?? this,
    });
    this.sampler.start();
    return this.sampler;
  }

  /** Opens the local metrics endpoint when asked to; its module is loaded only then. */
  private async startEndpoint(name: string): Promise<void> {
    const listen = this.options.metrics?.listen;
    if (!listen) return;
    const { startMetricsEndpoint } = await import('./metrics/endpoint.ts');
    this.endpoint = await startMetricsEndpoint({
      listen, log: this.log, ...(this.options.metrics?.token ? { token: this.options.metrics.token } : {}),
      sources: {
        sample: () => this.sampler?.latest,
        agent: () => ({ name, version: STRATA_VERSION, state: this.stateValue, configurations: this.statuses().map((s) => ({ configuration: s.configuration, phase: s.phase, ...(s.currentRevision === undefined ? {} : { currentRevision: s.currentRevision }) })) }),
      },
    });
  }

  /** Re-reads the full desired state every poll interval (±10 % jitter) as ground truth. */
  private async pollLoop(api: ServerApi, signal: AbortSignal): Promise<void> {
    while (!signal.aborted) {
      try {
        this.applyDesired(await api.failingOver(() => api.desired()), true);
      } catch (error) {
        if (isStrataError(error, 'UNAUTHENTICATED')) {
          this.refuse((error as Error).message);
          return;
        }
        // An unreachable server is expected weather, not a bug: one line, no stack.
        this.log.warn(isClientError(error) ? { reason: (error as Error).message } : { err: error }, 'could not read the desired state; retrying at the next poll');
      }
      const jitter = this.options.pollMs * 0.1;
      await sleep(this.options.pollMs - jitter + Math.random() * 2 * jitter, signal);
    }
  }

  /**
   * Converges every tracked configuration once; true when all are deployed. Throws when the server
   * cannot be reached within ONCE_UNREACHABLE_MS, or when the agent tracks nothing.
   */
  async runOnce(): Promise<boolean> {
    this.onceGiveUpAt = Date.now() + ONCE_UNREACHABLE_MS;
    const api = await this.prepare();
    this.transition('running');
    // Tracks and labels given on this start decide the desired state: the server hears them first
    // (no statuses yet: a report merges those it carries, so this one changes none).
    if (!this.enrolledNow && (this.options.tracks.length > 0 || Object.keys(this.options.labels).length > 0)) {
      const report = await this.statusReport();
      await this.withRetry('report the tracks and labels', () => api.failingOver(() => api.report(report)));
    }
    // A replica that cannot be reached is passed over for the next, as the daemon's poll does.
    const state = await this.withRetry('read the desired state', () => api.failingOver(() => api.desired()));
    this.applyDesired(state, false);
    for (const worker of this.workers.values()) await worker.step({ ignoreBackoff: true });
    clearTimeout(this.reportTimer);
    this.reportTimer = undefined;
    await this.report();
    const statuses = [...this.workers.values()].map((w) => w.current);
    // Nothing deployed is not success for a script that asked for a converged machine, so say why.
    if (statuses.length === 0) throw new StrataError('BAD_REQUEST', `nothing to converge: agent "${api.identity.name}" tracks no configuration (give --track NAME, or match its labels with strata assign)`);
    for (const status of statuses) {
      if (status.phase === 'deployed') this.log.info({ configuration: status.configuration, phase: status.phase }, 'converged once');
      // Why the run exits 1 must reach a script that keeps only warnings and errors.
      else this.log.error({ configuration: status.configuration, phase: status.phase, error: status.error }, `configuration ${status.configuration} is not deployed: ${status.error ? `${status.error.code}: ${status.error.message}` : status.phase}`);
    }
    return statuses.every((s) => s.phase === 'deployed');
  }

  /** Restarts a tracked configuration's service (the `restart` order). */
  async restartService(configuration: string): Promise<ServiceStatus> {
    const worker = this.workers.get(configuration);
    if (!worker) throw new StrataError('CONFIGURATION_NOT_FOUND', `configuration "${configuration}" is not tracked by this agent`);
    return worker.restartService();
  }

  /** Each tracked configuration's service, for metrics (pids to sample, restart counts). */
  services(): Array<{ configuration: string; pid?: number; state: ServiceStatus['state']; restarts: number; startedAt?: string }> {
    const list: Array<{ configuration: string; pid?: number; state: ServiceStatus['state']; restarts: number; startedAt?: string }> = [];
    for (const worker of this.workers.values()) {
      const service = worker.service.status();
      if (!service) continue;
      list.push({
        configuration: worker.name, state: service.state, restarts: service.restarts,
        ...(service.pid !== undefined ? { pid: service.pid } : {}), ...(service.startedAt ? { startedAt: service.startedAt } : {}),
      });
    }
    return list;
  }

  /** The statuses of all tracked configurations. */
  statuses(): ConfigStatus[] {
    return [...this.workers.values()].map((w) => w.current);
  }

  /** Stops once, however often called: workers, channel, poll, then the lock. */
  shutdown(): Promise<void> {
    this.stopping ??= (async () => {
      this.transition('stopping');
      // Orders are stopped first so their results still go out on the open channel.
      await this.orders?.shutdown(5_000);
      this.stop.abort();
      await Promise.all([...this.workers.values()].map((w) => w.stop()));
      clearTimeout(this.reportTimer);
      await Promise.allSettled(this.background);
      await this.reporting;
      await this.trimming;
      await this.endpoint?.close();
      await this.sampler?.stop();
      this.api?.close();
      await this.unlock?.();
      this.transition('stopped');
    })();
    return this.stopping;
  }
}
