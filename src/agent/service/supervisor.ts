/**
 * The `process` runtime: supervises one configuration's service as a child process group.
 *
 *   stopped → starting → running ⇄ unhealthy
 *                 ↓          ↓         ↓
 *             restarting ←───┴─────────┘   (per restart policy, with capped exponential backoff)
 *                 ↓
 *               failed (policy says no restart) / stopped (stop, or a clean exit under on-failure/never)
 *
 * The service runs in its own session and process group, with stdout and stderr going straight
 * to `CONFDIR/logs/service.log`, so it outlives the agent: the agent never kills it on its own
 * exit (`detach`), and a new agent re-adopts it from `service.json` when the recorded pid is
 * alive and its /proc start time matches — a recycled pid is never signalled. An adopted
 * process is not the agent's child, so it is watched by polling /proc (its exit status is then
 * unknown and counts as a failure).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import type { Logger } from '../../lib/logger.ts';
import { checkHealth } from './health.ts';
import { isSameProcess, processStat, signalGroup, waitGone } from './proc.ts';
import { readServiceRecord, writeServiceRecord, type ServiceRecord } from './record.ts';
import type { ResolvedService } from './resolve.ts';
import { DEFAULT_LOG_KEEP, DEFAULT_LOG_MAX_BYTES, openServiceLog, rotateServiceLog } from './service-log.ts';
import type { ServiceSpec } from '../../protocol/service.ts';
import { parseDuration } from '../../protocol/duration.ts';
import { TimerSet } from '../../lib/timer-set.ts';
import { ServiceStateCell, type HealthOutcome } from './service-state.ts';

/** A service's states (see the diagram above). */
export type ServiceState = 'starting' | 'running' | 'restarting' | 'unhealthy' | 'stopped' | 'failed';

/** How a service's last process ended. */
export interface ServiceExit {
  code: number | null;
  signal: string | null;
  at: string;
}

/** What the supervisor reports about its service. */
export interface ServiceInfo {
  state: ServiceState;
  pid?: number;
  restarts: number;
  /** When the state last changed. */
  since: string;
  startedAt?: string;
  releaseId?: string;
  lastExit?: ServiceExit;
  /** The last health check's message. */
  health?: string;
}

/** What identifies the release a service runs from. */
export interface ServiceOrigin {
  releaseId: string;
  revision: number;
  spec: ServiceSpec;
}

/** Options of a supervisor; the timings exist so tests need not wait for production values. */
export interface SupervisorOptions {
  configuration: string;
  confDir: string;
  log: Logger;
  /** Called on every state change (the agent reports it). */
  onChange?: () => void;
  /** How often an adopted process is looked for in /proc and the log size checked (default 500 ms). */
  pollMs?: number;
  /** A process running this long resets the restart backoff (default 10 s). */
  stableMs?: number;
  /** Without a health check, a service alive this long after start counts as running (default 1 s). */
  settleMs?: number;
  logMaxBytes?: number;
  logKeep?: number;
}

/** Longest wait for a process group to die after SIGKILL. */
const KILL_SETTLE_MS = 2000;

/** Supervises one configuration's service (process runtime). */
export class ProcessSupervisor {
  readonly configuration: string;
  private readonly options: SupervisorOptions;
  private readonly pollMs: number;
  private readonly stableMs: number;
  private readonly settleMs: number;
  private service: ResolvedService | undefined;
  private origin: ServiceOrigin | undefined;
  private child: ChildProcess | undefined;
  private pid: number | undefined;
  private startTime: string | undefined;
  private startedAt: number | undefined;
  private readonly status: ServiceStateCell;
  private restarts = 0;
  /** Failures in a row, for the backoff; reset by a stable run. */
  private consecutive = 0;
  private lastExit: ServiceExit | undefined;
  private healthMessage: string | undefined;
  private healthFailures = 0;
  private passedOnce = false;
  /** Bumped by every start and stop, so timers and exit handlers of an older process do nothing. */
  private generation = 0;
  private readonly timers = new TimerSet();
  private pollTimer: NodeJS.Timeout | undefined;
  private checking = false;
  /** The stop in progress, so concurrent stops of one process share it. */
  private terminating: { pid: number; done: Promise<void> } | undefined;
  private polling = false;
  private stoppingNow = false;
  private detached = false;

  constructor(options: SupervisorOptions) {
    this.options = options;
    this.configuration = options.configuration;
    this.status = new ServiceStateCell(options.configuration, options.log, options.onChange);
    this.pollMs = options.pollMs ?? 500;
    this.stableMs = options.stableMs ?? 10_000;
    this.settleMs = options.settleMs ?? 1000;
  }

  /** The current state. */
  get state(): ServiceState {
    return this.status.state;
  }

  /** The release and spec of the service supervised (or last supervised). */
  get running(): ServiceOrigin | undefined {
    return this.origin;
  }

  /** What to report. */
  info(): ServiceInfo {
    return {
      state: this.status.state, restarts: this.restarts, since: this.status.since,
      ...(this.pid !== undefined ? { pid: this.pid } : {}),
      ...(this.startedAt !== undefined && this.pid !== undefined ? { startedAt: new Date(this.startedAt).toISOString() } : {}),
      ...(this.origin ? { releaseId: this.origin.releaseId } : {}),
      ...(this.lastExit ? { lastExit: this.lastExit } : {}),
      ...(this.healthMessage !== undefined ? { health: this.healthMessage } : {}),
    };
  }

  private setState(next: ServiceState, why?: string): void {
    this.status.set(next, why, { pid: this.pid });
  }

  private clearTimers(): void {
    this.timers.clear();
    clearInterval(this.pollTimer);
    this.pollTimer = undefined;
  }

  /**
   * Re-adopts the process service.json names when it still runs (same pid, same start time).
   * `resolve` rebuilds the runnable service from the record, for later restarts. True when adopted.
   */
  async adopt(resolve: (record: ServiceRecord) => Promise<ResolvedService>): Promise<boolean> {
    const record = await readServiceRecord(this.options.confDir);
    if (!record || record.runtime !== 'process') return false;
    this.restarts = record.restarts;
    this.origin = { releaseId: record.releaseId, revision: record.revision, spec: record.spec };
    if (record.pid === undefined || record.startTime === undefined || !(await isSameProcess(record.pid, record.startTime))) {
      if (record.pid !== undefined) this.options.log.info({ configuration: this.configuration, pid: record.pid }, 'the recorded service process is gone (or its pid was reused); not adopting it');
      return false;
    }
    try {
      this.service = await resolve(record);
    } catch (error) {
      this.options.log.warn({ configuration: this.configuration, err: error }, 'cannot rebuild the recorded service; adopting it to stop it later only');
    }
    this.generation += 1;
    this.pid = record.pid;
    this.startTime = record.startTime;
    this.startedAt = record.startedAt ? Date.parse(record.startedAt) : Date.now();
    this.passedOnce = false;
    this.healthFailures = 0;
    this.options.log.info({ configuration: this.configuration, pid: record.pid }, 'adopted the running service');
    this.setState('starting', 'adopted');
    this.watch(this.generation);
    return true;
  }

  /** Starts the service (it must not be running); resolves once spawned, failing when it cannot be. */
  async start(service: ResolvedService, origin: ServiceOrigin): Promise<void> {
    if (this.pid !== undefined) throw new Error(`service ${this.configuration} is already running (pid ${this.pid})`);
    if (this.origin?.releaseId !== origin.releaseId) {
      this.restarts = 0;
      this.consecutive = 0;
      this.lastExit = undefined;
    }
    this.service = service;
    this.origin = origin;
    this.detached = false;
    await this.spawnNow();
  }

  private async spawnNow(): Promise<void> {
    const service = this.service!;
    const generation = ++this.generation;
    this.passedOnce = false;
    this.healthFailures = 0;
    this.healthMessage = undefined;
    const output = await openServiceLog(this.options.confDir);
    // Stopped while the log was being opened: start nothing.
    if (generation !== this.generation) {
      await output.close();
      return;
    }
    const [program, ...args] = service.argv;
    let child: ChildProcess;
    try {
      child = spawn(program!, args, {
        cwd: service.cwd, env: service.env, detached: true, shell: false, stdio: ['ignore', output.fd, output.fd],
        ...(service.uid !== undefined ? { uid: service.uid } : {}), ...(service.gid !== undefined ? { gid: service.gid } : {}),
      });
    } catch (error) {
      await output.close();
      throw error;
    }
    // Everything up to the first await is synchronous: a service that dies at once is still seen exiting.
    const pid = child.pid;
    if (pid === undefined) {
      const error = await new Promise<NodeJS.ErrnoException>((resolve) => child.once('error', resolve));
      await output.close();
      this.lastExit = { code: null, signal: null, at: new Date().toISOString() };
      this.healthMessage = `cannot start ${service.argv[0]}: ${error.code ?? error.message}`;
      this.onExit(generation, null, null);
      throw new Error(this.healthMessage);
    }
    this.child = child;
    this.pid = pid;
    this.startedAt = Date.now();
    this.startTime = undefined;
    child.once('exit', (code, signal) => this.onExit(generation, code, signal));
    child.on('error', (error) => this.options.log.warn({ err: error, configuration: this.configuration }, 'service process error'));
    child.unref();
    this.setState('starting', 'spawned');
    // The child has its own copy of the descriptor.
    await output.close();
    const startTime = (await processStat(pid))?.startTime;
    if (generation !== this.generation || this.pid !== pid) return;
    this.startTime = startTime;
    await this.saveRecord();
    if (generation === this.generation && this.pid === pid) this.watch(generation);
  }

  private async saveRecord(): Promise<void> {
    if (!this.origin || !this.service) return;
    const record: ServiceRecord = {
      configuration: this.configuration, runtime: 'process', releaseId: this.origin.releaseId, revision: this.origin.revision,
      restarts: this.restarts, spec: this.origin.spec,
      ...(this.pid !== undefined && this.startTime !== undefined ? { pid: this.pid, startTime: this.startTime, startedAt: new Date(this.startedAt!).toISOString() } : {}),
    };
    await writeServiceRecord(this.options.confDir, record).catch((error: unknown) => this.options.log.warn({ err: error, configuration: this.configuration }, 'could not record the service'));
  }

  /** Starts the poll (adopted liveness, log size) and the health checks for the process of `generation`. */
  private watch(generation: number): void {
    clearInterval(this.pollTimer);
    this.pollTimer = setInterval(() => void this.poll(generation), this.pollMs);
    this.pollTimer.unref();
    const health = this.service?.health;
    if (!health) {
      this.timers.later(this.settleMs, () => {
        if (generation === this.generation && this.pid !== undefined && this.status.state === 'starting') this.setState('running', 'alive after start');
      });
      return;
    }
    this.timers.later(Math.min(health.intervalMs, 200), () => void this.check(generation));
    this.timers.later(health.withinMs, () => {
      if (generation !== this.generation || this.passedOnce || this.pid === undefined) return;
      this.healthMessage = `no passing health check within ${health.withinMs} ms${this.healthMessage ? ` (last: ${this.healthMessage})` : ''}`;
      this.unhealthy(generation);
    });
  }

  private async poll(generation: number): Promise<void> {
    // One poll at a time: two rotations interleaving would copy an already truncated log.
    if (generation !== this.generation || this.polling) return;
    this.polling = true;
    try {
      await rotateServiceLog(this.options.confDir, this.options.logMaxBytes ?? DEFAULT_LOG_MAX_BYTES, this.options.logKeep ?? DEFAULT_LOG_KEEP).catch(() => false);
      // Our own child reports its exit; an adopted process is only seen to be gone from here.
      if (this.child || this.pid === undefined || this.startTime === undefined) return;
      if (!(await isSameProcess(this.pid, this.startTime)) && generation === this.generation) this.onExit(generation, null, null);
    } finally {
      this.polling = false;
    }
  }

  private async check(generation: number): Promise<void> {
    const health = this.service?.health;
    if (!health || generation !== this.generation || this.pid === undefined || this.checking) return;
    this.checking = true;
    let result;
    try {
      result = await checkHealth(health, { cwd: this.service!.cwd, env: this.service!.env });
    } finally {
      this.checking = false;
    }
    if (generation !== this.generation || this.pid === undefined) return;
    this.healthMessage = result.message;
    if (result.ok) {
      this.passedOnce = true;
      this.healthFailures = 0;
      this.setState('running', result.message);
      this.options.onChange?.();
    } else if (this.passedOnce) {
      this.healthFailures += 1;
      if (this.healthFailures >= health.failures) this.unhealthy(generation);
    }
    if (generation === this.generation && this.pid !== undefined) this.timers.later(health.intervalMs, () => void this.check(generation));
  }

  /** The service failed its health checks: restart it per policy, or leave it running unhealthy. */
  private unhealthy(generation: number): void {
    if (generation !== this.generation || this.stoppingNow) return;
    this.setState('unhealthy', this.healthMessage);
    if (this.service?.restart.policy === 'never') return;
    void this.cycle(generation);
  }

  /** Stops the unhealthy process and schedules its restart (the exit handler is bypassed by the generation bump). */
  private async cycle(generation: number): Promise<void> {
    await this.terminate();
    if (generation !== this.generation - 1 || this.stoppingNow) return;
    this.scheduleRestart(this.generation);
  }

  private onExit(generation: number, code: number | null, signal: NodeJS.Signals | null): void {
    if (generation !== this.generation) return;
    const ranMs = this.startedAt === undefined ? 0 : Date.now() - this.startedAt;
    // Only our own child's group is known to be ours; an adopted pid may already be someone else's.
    const ownGroup = this.child !== undefined ? this.pid : undefined;
    this.child = undefined;
    this.pid = undefined;
    this.startTime = undefined;
    this.lastExit = { code, signal, at: new Date().toISOString() };
    void this.saveRecord();
    // Whatever the service started dies with it.
    if (ownGroup !== undefined) signalGroup(ownGroup, 'SIGKILL');
    if (this.stoppingNow || this.detached) return;
    if (ranMs >= this.stableMs) this.consecutive = 0;
    const policy = this.service?.restart.policy ?? 'never';
    const clean = code === 0;
    const why = signal ? `killed by ${signal}` : code === null ? 'gone' : `exited with status ${code}`;
    this.options.log.warn({ configuration: this.configuration, code, signal, ranMs }, `service ${this.configuration} ${why}`);
    if (policy === 'always' || (policy === 'on-failure' && !clean)) {
      this.scheduleRestart(generation);
      return;
    }
    this.clearTimers();
    this.setState(clean ? 'stopped' : 'failed', why);
  }

  private scheduleRestart(generation: number): void {
    const restart = this.service!.restart;
    this.consecutive += 1;
    const delay = Math.min(restart.maxBackoffMs, restart.backoffMs * 2 ** Math.min(this.consecutive - 1, 30));
    this.setState('restarting', `in ${delay} ms`);
    this.timers.later(delay, () => {
      if (generation !== this.generation || this.stoppingNow || this.detached) return;
      this.restarts += 1;
      this.spawnNow().catch((error: unknown) => this.options.log.warn({ configuration: this.configuration, err: error }, 'service restart failed'));
    });
  }

  /** Sends the stop signal to the group, waits the grace, then SIGKILLs it; resolves when the process is gone. */
  private async terminate(): Promise<void> {
    const pid = this.pid;
    const startTime = this.startTime;
    const child = this.child;
    this.generation += 1;
    this.clearTimers();
    if (pid === undefined) return;
    // A stop arriving while an unhealthy cycle stops the same process waits for that one.
    if (this.terminating?.pid === pid) return this.terminating.done;
    const done = this.terminateNow(pid, startTime, child);
    this.terminating = { pid, done };
    try {
      await done;
    } finally {
      if (this.terminating?.pid === pid) this.terminating = undefined;
    }
  }

  private async terminateNow(pid: number, startTime: string | undefined, child: ChildProcess | undefined): Promise<void> {
    const service = this.service;
    // An adopted service whose release cannot be resolved any more still stops the way its spec says.
    const recorded = this.origin?.spec.stop;
    const signal = service?.stop.signal ?? recorded?.signal ?? 'SIGTERM';
    const graceMs = service?.stop.graceMs ?? (recorded ? parseDuration(recorded.grace) : 30_000);
    const gone = (): Promise<boolean> => child ? Promise.resolve(child.exitCode !== null || child.signalCode !== null) : startTime === undefined ? Promise.resolve(true) : isSameProcess(pid, startTime).then((same) => !same);
    // An adopted pid is signalled only while it is provably the same process.
    if (!(await gone())) {
      signalGroup(pid, signal);
      // As systemd does: a stopped (SIGSTOP) process only acts on the stop signal once continued.
      signalGroup(pid, 'SIGCONT');
      if (!(await waitGone(gone, graceMs))) {
        this.options.log.warn({ configuration: this.configuration, pid, graceMs }, `service ${this.configuration} ignored ${signal} for the grace period; killing it`);
        signalGroup(pid, 'SIGKILL');
        await waitGone(gone, KILL_SETTLE_MS);
      }
    }
    // Stragglers of the group go too.
    signalGroup(pid, 'SIGKILL');
    // A process started meanwhile (a rollback's) is not this one: leave its fields alone.
    if (this.pid !== pid) return;
    this.lastExit = child ? { code: child.exitCode, signal: child.signalCode, at: new Date().toISOString() } : { code: null, signal: null, at: new Date().toISOString() };
    this.child = undefined;
    this.pid = undefined;
    this.startTime = undefined;
  }

  /** Stops the service gracefully; resolves when it is gone. Recorded as stopped, so it is not adopted again. */
  async stop(): Promise<void> {
    this.stoppingNow = true;
    try {
      await this.terminate();
      this.setState('stopped', 'stopped');
      await this.saveRecord();
    } finally {
      this.stoppingNow = false;
    }
  }

  /** Restarts the service (an operator's `restart` order): graceful stop, then start the same release. */
  async restart(): Promise<ServiceInfo> {
    if (!this.service || !this.origin) throw new Error(`configuration ${this.configuration} has no service to restart`);
    await this.stop();
    if (this.pid !== undefined) throw new Error(`service ${this.configuration} did not stop (pid ${this.pid}); not starting a second instance`);
    this.restarts += 1;
    this.consecutive = 0;
    await this.spawnNow();
    return this.info();
  }

  /**
   * Waits until the service passes its first health check (or, without one, stays up for the
   * settle time): ok, or the reason it did not within the deadline.
   */
  async waitHealthy(signal?: AbortSignal): Promise<HealthOutcome> {
    const health = this.service?.health;
    const deadlineMs = health ? health.withinMs + health.timeoutMs + 500 : this.settleMs * 2 + 500;
    const started = this.generation;
    return this.status.waitFor((state) => {
      if (state === 'running') return { ok: true, message: this.healthMessage ?? 'running' };
      if (state === 'unhealthy') return { ok: false, message: `unhealthy: ${this.healthMessage ?? 'health check failed'}` };
      if (state === 'failed' || state === 'stopped') return { ok: false, message: `${state}: ${this.describeExit()}` };
      return undefined;
    }, deadlineMs, () => ({ ok: false, message: `not healthy within ${deadlineMs} ms (${this.status.state}${this.generation !== started ? `, ${this.describeExit()}` : ''}${this.healthMessage ? `; ${this.healthMessage}` : ''})` }), signal);
  }

  private describeExit(): string {
    const exit = this.lastExit;
    if (!exit) return 'no exit recorded';
    return exit.signal ? `last exit by ${exit.signal}` : exit.code === null ? 'the process went away' : `last exit status ${exit.code}`;
  }

  /** Stops supervising without stopping the service (the agent exits; a new agent adopts it). */
  detach(): void {
    this.detached = true;
    this.generation += 1;
    this.clearTimers();
    this.status.notify();
  }
}

