/**
 * Converges one tracked configuration: fetch its blobs, unpack its layers into a fresh release,
 * run the hook, switch `current`, record state, report. One worker per configuration, each
 * with its own loop, so several configurations deploy independently.
 *
 * Phases: pending → downloading → unpacking → hook → service → deployed, or → failed from any of
 * them. `service` (only with a service section) stops the old instance, switches `current`, starts
 * the new one and waits until it is healthy; if it never is, the release is rolled back or left
 * failed as the spec's `onFailure` says (see serviceFailed).
 * A failure leaves the previous release current and is retried with exponential backoff and
 * jitter, never in a tight loop; a different desired id (a newer revision) is tried at once.
 */
import { lstat, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../lib/logger.ts';
import { isStrataError } from '../core/errors.ts';
import type { Configuration } from '../store/contract.ts';
import type { ConfigStatus, Phase } from '../protocol/agent.ts';
import type { BlobCache } from './fetch/blob-cache.ts';
import { fetchAndUnpack } from './fetch-and-unpack.ts';
import { hookEnvironment, runHook, writeStateFile } from './hook/index.ts';
import { forgetHook, recordHook, stopOrphanHook } from './hook/hook-record.ts';
import { commitRelease, discardRelease, markDeployed, prepareRelease, pruneReleases, readCurrent, readState, releasesDir, removeLeftovers, switchCurrent, withReleasesLock, writeState, type FailedDeploy } from './releases/index.ts';
import { readHold, removeHold, writeHold } from './hold.ts';
import { ServiceSlot, type PreparedService } from './service/service-slot.ts';
import { ServiceSpecError } from './service/resolve.ts';
import type { ServiceOrigin } from './service/supervisor.ts';
import type { ServiceStatus } from '../protocol/agent.ts';
import { ORDER_CODES } from '../protocol/orders.ts';
import { writeLastHookLog } from './orders/last-hook-log.ts';
import { gcPacer } from '../lib/gc-pacer.ts';
import { retryDelay } from '../lib/backoff.ts';

/** Settings shared by every worker of an agent. */
export interface WorkerSettings {
  /** The agent's directory; this configuration lives in `<dir>/<name>/`. */
  dir: string;
  cache: BlobCache;
  hook?: string;
  hookTimeoutMs: number;
  keep: number;
  limits: { maxFiles: number; maxBytes: number };
  /** PATH, HOME and the like, passed on to the hook. */
  agentEnv: Record<string, string | undefined>;
  log: Logger;
  /** Called whenever this worker's status changes. */
  onStatus: (status: ConfigStatus) => void;
  /** Called after a deploy went live and old releases were pruned (the agent then trims its blob cache). */
  onDeployed?: () => void;
  /** First and largest wait between retries of a failing deploy. */
  retryBaseMs: number;
  retryCapMs: number;
  /** Service supervisor timings (tests shorten them). */
  serviceTiming?: { pollMs?: number; stableMs?: number; settleMs?: number };
}

/** Time between SIGTERM and SIGKILL for a hook left running by an agent that died. */
const HOOK_KILL_GRACE_MS = 5_000;

/** How often a release left failed with an unhealthy service (`on-failure stay`) is looked at again. */
const SERVICE_RECHECK_MS = 1000;

/** A deploy failure with a stable code and, for hooks, its output. */
class DeployFailure extends Error {
  readonly code: string;
  readonly hookOutput: string | undefined;
  readonly hookExitCode: number | null | undefined;

  constructor(code: string, message: string, hook?: { output: string; exitCode: number | null }) {
    super(message);
    this.code = code;
    this.hookOutput = hook?.output;
    this.hookExitCode = hook?.exitCode;
  }
}

/** True when `file` exists (without following a symlink). */
async function exists(file: string): Promise<boolean> {
  return lstat(file).then(() => true, () => false);
}

/** The stable code a failed deploy is reported with; a full disk is the same failure wherever it struck. */
function failureCode(error: unknown): string {
  if (isStrataError(error)) return error.code;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') return 'INSUFFICIENT_STORAGE';
  return code ?? 'INTERNAL';
}

/** Deploys one configuration whenever its desired state differs from what is current. */
export class ConfigWorker {
  readonly name: string;
  readonly confDir: string;
  /** Steps and service restarts run one at a time (see `exclusive`). */
  private lock: Promise<void> = Promise.resolve();
  private stepping = false;
  private readonly settings: WorkerSettings;
  private desired: Configuration | undefined;
  private missing = false;
  private status: ConfigStatus;
  private failures = 0;
  private failedId: string | undefined;
  private retryAt = 0;
  /** Whether the leftovers of interrupted deploys were removed (once, before the first step). */
  private swept = false;
  /** A failure an earlier agent recorded in state.json, reported while its backoff runs. */
  private restoredFailure: FailedDeploy | undefined;
  private wake: (() => void) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  /** Set by every poke, so a change that arrives while a step runs is never lost. */
  private dirty = true;
  private loop: Promise<void> | undefined;
  private abort = new AbortController();
  /** This configuration's service (started after the hook, from the new release). */
  readonly service: ServiceSlot;
  /** A release left current with an unhealthy service (`on-failure stay`): failed until it turns healthy. */
  private serviceFailedId: string | undefined;
  /**
   * Releases a hook left changed whose removal failed, with why: never reused, removed again
   * before the next deploy, and kept in hook.json so that the next start removes them too.
   */
  private readonly undiscarded = new Map<string, string>();

  constructor(name: string, settings: WorkerSettings) {
    this.name = name;
    this.settings = settings;
    this.confDir = path.join(settings.dir, name);
    this.status = { configuration: name, phase: 'pending', at: new Date().toISOString() };
    this.service = new ServiceSlot({
      configuration: name, confDir: this.confDir, log: settings.log, agentEnv: settings.agentEnv,
      onChange: () => settings.onStatus(this.current), ...(settings.serviceTiming ? { timing: settings.serviceTiming } : {}),
    });
  }

  /** The latest status, with the service's state. */
  get current(): ConfigStatus {
    const service: ServiceStatus | undefined = this.service.status();
    return service ? { ...this.status, service } : this.status;
  }

  /** Sets what this configuration should be (undefined: it does not exist on the server). */
  setDesired(configuration: Configuration | undefined): void {
    const previous = this.desired?.id;
    this.desired = configuration;
    this.missing = configuration === undefined;
    // A newer revision supersedes a failing one at once, and stops a download of the old one.
    if (configuration && previous !== undefined && configuration.id !== previous) this.abort.abort();
    this.poke();
  }

  /** Starts the loop (daemon mode). */
  start(): void {
    this.loop ??= this.run();
  }

  /** Stops the loop; a deploy in progress is abandoned at its next step. The service keeps running (a new agent adopts it). */
  async stop(): Promise<void> {
    this.stopped = true;
    this.abort.abort();
    this.poke();
    await this.loop;
    this.service.detach();
  }

  private poke(): void {
    this.dirty = true;
    this.wake?.();
  }

  private setPhase(phase: Phase, extra: Partial<ConfigStatus> = {}): void {
    const desired = this.desired;
    this.status = {
      configuration: this.name, phase, at: new Date().toISOString(),
      ...(desired ? { desiredRevision: desired.revision, desiredId: desired.id } : {}),
      ...(this.status.currentId ? { currentId: this.status.currentId } : {}),
      ...(this.status.currentRevision !== undefined ? { currentRevision: this.status.currentRevision } : {}),
      ...extra,
    };
    this.settings.log.info({ configuration: this.name, phase, revision: desired?.revision, error: extra.error }, `configuration ${this.name}: ${phase}`);
    this.settings.onStatus(this.current);
  }

  private async run(): Promise<void> {
    while (!this.stopped) {
      this.dirty = false;
      this.stepping = true;
      const delay = await this.exclusive(() => this.step()).finally(() => (this.stepping = false));
      if (this.stopped) break;
      if (this.dirty || delay === 0) continue;
      await new Promise<void>((resolve) => {
        this.wake = resolve;
        if (delay !== undefined) this.timer = setTimeout(resolve, delay);
      });
      clearTimeout(this.timer);
      this.wake = undefined;
    }
  }

  /**
   * Reads what is current on disk before every step, so a restarted agent does not redeploy
   * what it has, and a local rollback made while it runs is seen.
   */
  private async loadCurrent(): Promise<void> {
    const currentId = await readCurrent(this.confDir).catch(() => undefined);
    if (currentId === this.status.currentId) return;
    const state = await readState(this.confDir).catch(() => undefined);
    const revision = state?.history?.findLast((entry) => entry.id === currentId)?.revision;
    const { currentId: _id, currentRevision: _revision, ...rest } = this.status;
    this.status = { ...rest, ...(currentId ? { currentId } : {}), ...(revision !== undefined ? { currentRevision: revision } : {}) };
  }

  /**
   * Keeps the failure and its retry time in state.json, so an agent restarted meanwhile (a crash,
   * a reboot, systemd restarting it) waits out the same backoff instead of retrying at once.
   * A state.json that cannot be read is left as it is.
   */
  private async recordFailure(desired: Configuration, failure: DeployFailure): Promise<void> {
    const failed: FailedDeploy = {
      id: desired.id, revision: desired.revision, at: new Date().toISOString(), attempts: this.failures,
      exitCode: failure.hookExitCode ?? null, signal: null, timedOut: failure.code === 'HOOK_TIMEOUT', output: failure.hookOutput ?? '',
      code: failure.code, message: failure.message, retryAt: new Date(this.retryAt).toISOString(),
    };
    try {
      await withReleasesLock(this.confDir, async () => {
        const state = await readState(this.confDir);
        await writeState(this.confDir, { configuration: this.name, current: state?.current ?? null, history: state?.history ?? [], failed });
      });
    } catch (error) {
      this.settings.log.warn({ err: error, configuration: this.name }, 'could not record the failed deploy in state.json');
    }
  }

  /** Reports a failure an earlier agent recorded, while its backoff still runs. */
  private reportRestoredFailure(failed: FailedDeploy): void {
    this.setPhase('failed', {
      error: { code: failed.code ?? 'INTERNAL', message: failed.message ?? 'the last deploy failed' },
      ...(failed.output !== '' ? { hookOutput: failed.output, hookExitCode: failed.exitCode } : {}),
    });
  }

  /**
   * Before the first step: takes over the backoff of a failure an earlier agent recorded, stops a
   * hook an earlier agent that died left running and removes the releases its record names (see
   * stopOrphanHook), then removes the debris of a deploy a crash interrupted, which may be what
   * fills the disk. Failing here is logged, never fatal: the deploy that follows reports what is
   * really wrong.
   */
  private async sweep(): Promise<void> {
    const log = this.settings.log;
    const failed = (await readState(this.confDir).catch(() => undefined))?.failed;
    if (failed?.retryAt !== undefined && Number.isFinite(Date.parse(failed.retryAt))) {
      this.failedId = failed.id;
      this.failures = failed.attempts;
      // Never longer than the cap from now, whatever the clock did meanwhile.
      this.retryAt = Math.min(Date.parse(failed.retryAt), Date.now() + this.settings.retryCapMs);
      this.restoredFailure = failed;
    }
    try {
      const orphan = await stopOrphanHook(this.confDir, HOOK_KILL_GRACE_MS, (release) => this.discard(release, 'an earlier agent\'s hook changed it and did not succeed'));
      if (orphan.stopped !== undefined) log.warn({ configuration: this.name, pid: orphan.stopped }, 'stopped a hook an earlier agent left running');
    } catch (error) {
      log.warn({ err: error, configuration: this.name }, 'could not stop the hook an earlier agent left running');
    }
    try {
      const leftovers = await removeLeftovers(this.confDir, { atStart: true });
      if (leftovers.length > 0) log.info({ configuration: this.name, leftovers }, 'removed what an interrupted deploy left');
    } catch (error) {
      log.warn({ err: error, configuration: this.name }, 'could not remove what an interrupted deploy left');
    }
  }

  /**
   * One convergence step. Returns how long to wait before the next one when a retry is due,
   * or undefined to wait for a new desired state. `ignoreBackoff` (`strata agent --once`, run to
   * try now) attempts a failed deploy again even while its backoff runs.
   */
  async step(options: { ignoreBackoff?: boolean } = {}): Promise<number | undefined> {
    if (!this.swept) {
      this.swept = true;
      await this.sweep();
    }
    await this.service.init().catch((error: unknown) => this.settings.log.warn({ err: error, configuration: this.name }, 'could not re-adopt the service'));
    await this.loadCurrent();
    const desired = this.desired;
    if (!desired) {
      if (this.missing) this.setPhase('pending', { error: { code: 'CONFIGURATION_NOT_FOUND', message: `configuration "${this.name}" does not exist on the server` } });
      return undefined;
    }
    const hold = await readHold(this.confDir);
    if (hold === desired.id) {
      // A failed deploy that rolled back holds its id: it stays reported as failed.
      if (this.status.phase !== 'failed' && this.status.error?.code !== 'HELD') this.setPhase('pending', { error: { code: 'HELD', message: 'rolled back locally; waiting for a new revision' } });
      return undefined;
    }
    // Another revision is desired: the hold has done its work. Kept, it would refuse the held id for
    // ever, even when the server later goes back to that very content (`strata rollback`).
    // Under the releases lock, and only the hold read above: a local rollback writes its own there.
    // Failing is logged, not fatal: an old hold refuses only its own id.
    if (hold !== undefined) {
      await withReleasesLock(this.confDir, async () => {
        if ((await readHold(this.confDir)) === hold) await removeHold(this.confDir);
      }).catch((error: unknown) => this.settings.log.warn({ err: error, configuration: this.name }, 'could not release the hold'));
    }
    if (this.status.currentId === desired.id) {
      if (this.serviceFailedId === desired.id) {
        if (this.service.supervisor.state !== 'running') return SERVICE_RECHECK_MS;
        this.serviceFailedId = undefined;
      }
      await this.service.ensure(desired).catch((error: unknown) => this.settings.log.warn({ err: error, configuration: this.name }, 'could not start the service'));
      if (this.status.phase !== 'deployed' || this.status.desiredRevision !== desired.revision) this.setPhase('deployed', { currentRevision: desired.revision });
      return undefined;
    }
    if (options.ignoreBackoff !== true && this.failedId === desired.id && Date.now() < this.retryAt) {
      if (this.restoredFailure !== undefined && this.status.phase !== 'failed') this.reportRestoredFailure(this.restoredFailure);
      return this.retryAt - Date.now();
    }
    this.abort = new AbortController();
    try {
      await this.deploy(desired, this.abort.signal);
      this.failures = 0;
      this.failedId = undefined;
      this.restoredFailure = undefined;
      return undefined;
    } catch (error) {
      if (this.abort.signal.aborted && !this.stopped && this.desired?.id !== desired.id) return 0;
      if (this.stopped) return undefined;
      this.failures = this.failedId === desired.id ? this.failures + 1 : 1;
      this.failedId = desired.id;
      this.restoredFailure = undefined;
      const wait = retryDelay(this.failures, this.settings.retryBaseMs, this.settings.retryCapMs);
      this.retryAt = Date.now() + wait;
      const failure = error instanceof DeployFailure ? error : new DeployFailure(failureCode(error), (error as Error).message);
      this.setPhase('failed', {
        error: { code: failure.code, message: failure.message },
        ...(failure.hookOutput !== undefined ? { hookOutput: failure.hookOutput, hookExitCode: failure.hookExitCode ?? null } : {}),
      });
      this.settings.log.warn({ configuration: this.name, retryInMs: wait, failures: this.failures }, 'deploy failed; will retry');
      await this.recordFailure(desired, failure);
      return wait;
    }
  }

  /** Fetches, unpacks, runs the hook and switches; throws on failure with `current` untouched. */
  private async deploy(desired: Configuration, signal: AbortSignal): Promise<void> {
    const { cache, limits } = this.settings;
    this.setPhase('downloading');
    if (this.undiscarded.size > 0) await this.retryDiscards(desired.id);
    const release = await prepareRelease(this.confDir, desired.id);
    // A release directory named by this id is complete (it only gets the name once whole): reuse it.
    if (await exists(release.finalDir)) {
      await cache.ensure(desired.layers.map((layer) => ({ sha256: layer.blob, size: layer.size })), { signal });
    } else {
      try {
        await fetchAndUnpack({ cache, layers: desired.layers, target: release.tempDir, limits, signal, onDownloaded: () => this.setPhase('unpacking') });
      } finally {
        gcPacer.settle(); // the agent goes back to idle without the deploy's garbage
      }
      await commitRelease(release.tempDir, release.finalDir);
    }
    signal.throwIfAborted();

    const oldId = this.status.currentId;
    const oldRevision = this.status.currentRevision;
    let hookResult: { output: string; exitCode: number | null } | undefined;
    if (this.settings.hook) {
      this.setPhase('hook');
      hookResult = await this.runHook(desired, release.finalDir, oldId, signal);
    }
    let service: PreparedService | undefined;
    try {
      service = await this.service.prepare(desired);
    } catch (error) {
      if (error instanceof ServiceSpecError) throw new DeployFailure('SERVICE_INVALID', `service: ${error.message}`);
      throw error;
    }
    signal.throwIfAborted();

    const previous = this.service.origin;
    await this.service.stop();
    try {
      await withReleasesLock(this.confDir, () => switchCurrent(this.confDir, desired.id));
    } catch (error) {
      // The old release stays current: so does its service.
      if (previous) await this.service.startPrevious(previous);
      throw error;
    }
    this.status = { ...this.status, currentId: desired.id, currentRevision: desired.revision };
    if (service) {
      this.setPhase('service');
      const health = await this.service.startAndWait(service, signal);
      signal.throwIfAborted();
      if (!health.ok) await this.serviceFailed(desired, health.message, service, previous, oldId, oldRevision);
    } else if (previous) {
      await this.service.ensure(desired);
    }
    // From here the release is live: bookkeeping that fails must not report the deploy as failed.
    try {
      await this.recordDeployed(desired);
      await pruneReleases(this.confDir, this.settings.keep, [desired.id, ...(oldId ? [oldId] : [])]);
    } catch (error) {
      this.settings.log.warn({ err: error, configuration: this.name }, 'deployed, but recording state or pruning old releases failed');
    }
    this.setPhase('deployed', hookResult ? { hookOutput: hookResult.output, hookExitCode: hookResult.exitCode } : {});
    this.settings.onDeployed?.();
  }

  /**
   * Removes a release a hook worked on without succeeding (never the current one), so the next
   * attempt unpacks it afresh from the cached blobs. Failing to is logged, not fatal; resolves
   * false when the release is still there, which `undiscarded` then keeps from being reused.
   */
  private async discard(id: string, why: string): Promise<boolean> {
    try {
      if (await discardRelease(this.confDir, id)) this.settings.log.info({ configuration: this.name, release: id }, `removed the release: ${why}`);
      this.undiscarded.delete(id);
      return true;
    } catch (error) {
      const stillThere = await exists(path.join(releasesDir(this.confDir), id));
      this.settings.log.warn({ err: error, configuration: this.name, release: id, stillThere }, 'could not remove a release a hook may have changed');
      // Renamed away before removing its tree failed: no release any more, only debris that the
      // next prune or start removes.
      if (!stillThere) {
        this.undiscarded.delete(id);
        return true;
      }
      this.undiscarded.set(id, (error as Error).message);
      return false;
    }
  }

  /**
   * Tries again to remove the releases whose removal failed, and keeps hook.json in step (no hook
   * runs now). Throws when `id`'s is still there: that tree is not what its layers say, and an
   * unpack cannot replace it while it holds the name.
   */
  private async retryDiscards(id: string): Promise<void> {
    for (const release of [...this.undiscarded.keys()]) await this.discard(release, 'an earlier removal had failed');
    await forgetHook(this.confDir, [...this.undiscarded.keys()]);
    const reason = this.undiscarded.get(id);
    if (reason !== undefined) throw new DeployFailure('RELEASE_NOT_REMOVED', `the release a failed hook changed cannot be removed, and is not reused: ${reason}`);
  }

  /**
   * The blobs this configuration may still need: its desired layers' and those of every release
   * kept on disk (a server-side rollback to one re-checks its blobs). The agent keeps these in
   * its cache and removes the rest.
   */
  async blobsInUse(): Promise<Set<string>> {
    const blobs = new Set((this.desired?.layers ?? []).map((layer) => layer.blob));
    const state = await readState(this.confDir).catch(() => undefined);
    for (const record of [...(state?.history ?? []), ...(state?.current ? [state.current] : [])]) {
      if (!(await exists(path.join(releasesDir(this.confDir), record.id)))) continue;
      for (const layer of record.layers) blobs.add(layer.blob);
    }
    return blobs;
  }

  /**
   * The new release's service never became healthy. `rollback` (the default): stop it, switch
   * `current` back, start the previous release's service again, and hold the failed id so it is
   * not retried until a new revision comes. `stay` (or nothing to go back to): leave the new
   * release current and its service supervised, reported failed until it turns healthy.
   */
  private async serviceFailed(desired: Configuration, reason: string, service: PreparedService, previous: ServiceOrigin | undefined, oldId: string | undefined, oldRevision: number | undefined): Promise<never> {
    const canRollBack = service.resolved.onFailure === 'rollback' && oldId !== undefined && await exists(path.join(releasesDir(this.confDir), oldId));
    if (canRollBack) {
      await this.service.stop();
      // Reported failed, not deployed, should the switch back fail and leave this release current.
      this.serviceFailedId = desired.id;
      // The hold with the switch, under the lock, as a local rollback does: a crash or a rollback
      // in between must not leave the unhealthy revision free to be deployed again at once.
      await withReleasesLock(this.confDir, async () => {
        await writeHold(this.confDir, desired.id);
        await switchCurrent(this.confDir, oldId);
      });
      this.serviceFailedId = undefined;
      this.status = { ...this.status, currentId: oldId, ...(oldRevision !== undefined ? { currentRevision: oldRevision } : {}) };
      if (previous?.releaseId === oldId) await this.service.startPrevious(previous);
      throw new DeployFailure('SERVICE_UNHEALTHY', `the service of revision ${desired.revision} did not become healthy (${reason}); rolled back to ${oldRevision !== undefined ? `revision ${oldRevision}` : 'the previous release'}`);
    }
    this.serviceFailedId = desired.id;
    await this.recordDeployed(desired).catch(() => undefined);
    const why = service.resolved.onFailure === 'stay' ? 'on-failure stay' : 'nothing to roll back to';
    throw new DeployFailure('SERVICE_UNHEALTHY', `the service of revision ${desired.revision} did not become healthy (${reason}); left running and supervised (${why})`);
  }

  /** Records in state.json that `desired` is current, under the releases lock. */
  private async recordDeployed(desired: Configuration): Promise<void> {
    await withReleasesLock(this.confDir, async () => writeState(this.confDir, markDeployed(await readState(this.confDir).catch(() => undefined), desired)));
  }

  /** Restarts this configuration's service (the `restart` order). */
  restartService(): Promise<ServiceStatus> {
    // A restart racing the deploy's own service phase could start a second instance or make a
    // healthy release look failed: while a step runs, the order is refused rather than queued.
    if (this.stepping) return Promise.reject(Object.assign(new Error(`configuration ${this.name} is being deployed; restart it once the deploy is done`), { orderCode: ORDER_CODES.BUSY }));
    return this.exclusive(() => this.service.restart());
  }

  /** Runs `work` after whatever step or restart is running (one at a time per configuration). */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const run = this.lock.then(work, work);
    this.lock = run.then(() => undefined, () => undefined);
    return run;
  }

  /**
   * Runs the hook for `desired`; `signal` (a newer revision, or the agent stopping) stops its whole
   * process group as a timeout does — SIGTERM, then SIGKILL after the grace — and the deploy ends
   * as superseded rather than waiting out the hook's timeout.
   */
  private async runHook(desired: Configuration, newRoot: string, oldId: string | undefined, signal: AbortSignal): Promise<{ output: string; exitCode: number | null }> {
    const stateFile = await writeStateFile(this.confDir, desired);
    try {
      const env = hookEnvironment({
        configuration: desired, newRoot, stateFile, agentEnv: this.settings.agentEnv,
        ...(oldId ? { oldId, oldRoot: path.join(releasesDir(this.confDir), oldId) } : {}),
      });
      const warn = (error: unknown): void => this.settings.log.warn({ err: error, configuration: this.name }, 'could not record the running hook');
      // Recorded before the spawn too: an agent killed before it learns the pid still leaves a
      // record, by which the next start finds the hook (its STATEFILE) and its release.
      await recordHook(this.confDir, { release: desired.id, stateFile }, [...this.undiscarded.keys()]).catch(warn);
      let recording: Promise<void> | undefined;
      const onSpawn = (pid: number): void => {
        recording = recordHook(this.confDir, { release: desired.id, stateFile, pid }, [...this.undiscarded.keys()]).catch(warn);
      };
      const result = await runHook({ hook: this.settings.hook!, cwd: process.cwd(), env, timeoutMs: this.settings.hookTimeoutMs, signal, onSpawn });
      await recording;
      // A hook that ran and did not succeed may have half-changed NEWROOT: the next attempt unpacks
      // afresh. Removed before the hook's record goes, so a crash in between still finds it; a
      // release that could not be removed stays recorded.
      const succeeded = !result.aborted && result.spawnError === undefined && !result.timedOut && result.exitCode === 0;
      if (recording !== undefined && !succeeded) await this.discard(desired.id, 'its hook did not succeed');
      await forgetHook(this.confDir, [...this.undiscarded.keys()]);
      // Kept for the `logs` order; losing it must not fail the deploy.
      await writeLastHookLog(this.confDir, result.output).catch((error: unknown) => this.settings.log.warn({ err: error, configuration: this.name }, 'could not record the hook output'));
      if (result.aborted) signal.throwIfAborted();
      if (result.spawnError) throw new DeployFailure('HOOK_MISSING', `hook ${this.settings.hook} cannot run: ${result.spawnError}`, { output: result.output, exitCode: null });
      if (result.timedOut) throw new DeployFailure('HOOK_TIMEOUT', `hook timed out after ${Math.round(this.settings.hookTimeoutMs / 1000)}s and was killed`, { output: result.output, exitCode: result.exitCode });
      if (result.exitCode !== 0) {
        const how = result.signal ? `was killed by ${result.signal}` : `exited with status ${result.exitCode}`;
        throw new DeployFailure('HOOK_FAILED', `hook ${how}`, { output: result.output, exitCode: result.exitCode });
      }
      return { output: result.output, exitCode: result.exitCode };
    } finally {
      await rm(stateFile, { force: true });
    }
  }
}
