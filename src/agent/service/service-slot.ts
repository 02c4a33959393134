/**
 * One configuration's service as the deploy loop sees it: re-adopt what a previous agent
 * started, resolve the spec of a release, stop the old instance, start the new one and wait
 * until it is healthy, start a previous release again on rollback, restart on an order, and let
 * go (without stopping anything) when the agent exits.
 */
import { access } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from '../../lib/logger.ts';
import type { Configuration } from '../../store/contract.ts';
import type { ServiceStatus } from '../../protocol/agent.ts';
import type { ServiceSpec } from '../../protocol/service.ts';
import { removeServiceRecord, readServiceRecord, type ServiceRecord } from './record.ts';
import { resolveService, serviceSpecOf, ServiceSpecError, type ResolvedService } from './resolve.ts';
import { ProcessSupervisor, type ServiceOrigin, type SupervisorOptions } from './supervisor.ts';
import { SystemdSupervisor } from './systemd-supervisor.ts';
import type { CommandRunner } from './systemd.ts';

/** Either runtime; both have the same surface. */
export type ServiceRuntime = ProcessSupervisor | SystemdSupervisor;

/** Where systemd keeps its runtime state when it is PID 1 (the check sd_booted(3) makes). */
const SYSTEMD_RUNTIME_DIR = '/run/systemd/system';

/** True when systemd runs this machine. */
export async function systemdRunning(): Promise<boolean> {
  return access(SYSTEMD_RUNTIME_DIR).then(() => true, () => false);
}

/** A service ready to start from one release, with what identifies it. */
export interface PreparedService {
  resolved: ResolvedService;
  origin: ServiceOrigin;
}

/** Options of a slot. */
export interface ServiceSlotOptions {
  configuration: string;
  confDir: string;
  log: Logger;
  agentEnv: Record<string, string | undefined>;
  onChange: () => void;
  /** Supervisor timings (tests shorten them). */
  timing?: Pick<SupervisorOptions, 'pollMs' | 'stableMs' | 'settleMs'>;
  /** The systemd runtime's surroundings (tests inject a runner and a unit directory). */
  systemd?: { unitDir?: string; runner?: CommandRunner; available?: () => Promise<boolean> };
}

/** The service of one configuration. */
export class ServiceSlot {
  private readonly options: ServiceSlotOptions;
  private runtime: ServiceRuntime;
  private initialised = false;
  /** True once a spec was seen or a record found: only then is a service reported. */
  private known = false;

  constructor(options: ServiceSlotOptions) {
    this.options = options;
    this.runtime = this.makeRuntime('process');
  }

  /** The runtime supervising the service now. */
  get supervisor(): ServiceRuntime {
    return this.runtime;
  }

  private makeRuntime(kind: 'process' | 'systemd'): ServiceRuntime {
    const { configuration, confDir, log, onChange } = this.options;
    if (kind === 'process') return new ProcessSupervisor({ configuration, confDir, log, onChange, ...this.options.timing });
    const systemd = this.options.systemd ?? {};
    return new SystemdSupervisor({
      configuration, confDir, log, onChange,
      ...(systemd.unitDir ? { unitDir: systemd.unitDir } : {}), ...(systemd.runner ? { runner: systemd.runner } : {}),
      ...(this.options.timing?.pollMs ? { pollMs: this.options.timing.pollMs } : {}),
    });
  }

  /** Switches runtimes when a release's spec names the other one (the old instance is stopped by then). */
  private useRuntime(kind: 'process' | 'systemd'): void {
    const current = this.runtime instanceof SystemdSupervisor ? 'systemd' : 'process';
    if (current === kind) return;
    this.runtime.detach();
    this.runtime = this.makeRuntime(kind);
  }

  /** The status to report, when this configuration has (or had) a service. */
  status(): ServiceStatus | undefined {
    return this.known ? this.supervisor.info() : undefined;
  }

  /** What runs (or last ran): its release and spec. */
  get origin(): ServiceOrigin | undefined {
    return this.supervisor.running;
  }

  /** Re-adopts a service a previous agent left running; once per agent start. */
  async init(): Promise<void> {
    if (this.initialised) return;
    this.initialised = true;
    const record = await readServiceRecord(this.options.confDir);
    if (!record) return;
    this.known = true;
    this.useRuntime(record.runtime);
    await this.supervisor.adopt((found: ServiceRecord) => this.resolve(found.spec, found.releaseId, found.revision).then((prepared) => prepared.resolved));
  }

  /** Resolves a spec against the release named `releaseId` of this configuration. */
  private async resolve(spec: ServiceSpec, releaseId: string, revision: number): Promise<PreparedService> {
    if (spec.runtime === 'systemd' && !(await (this.options.systemd?.available ?? systemdRunning)())) {
      throw new ServiceSpecError('runtime: systemd is not running on this machine (PID 1 is not systemd); use runtime "process"');
    }
    const releaseDir = path.join(this.options.confDir, 'releases', releaseId);
    const resolved = await resolveService(spec, releaseDir, { configuration: this.options.configuration, revision, releaseId }, this.options.agentEnv);
    return { resolved, origin: { releaseId, revision, spec } };
  }

  /** The service a configuration's release runs, or undefined when it has none; throws ServiceSpecError. */
  async prepare(configuration: Configuration): Promise<PreparedService | undefined> {
    const spec = serviceSpecOf(configuration.settings);
    if (!spec) return undefined;
    this.known = true;
    if (spec.runtime === 'process' && Object.keys(spec.limits).length > 0) {
      this.options.log.warn({ configuration: this.options.configuration, limits: spec.limits }, 'the process runtime does not apply resource limits; they are ignored (the systemd runtime applies them)');
    }
    return this.resolve(spec, configuration.id, configuration.revision);
  }

  /** Stops the running instance gracefully, if any. */
  async stop(): Promise<void> {
    if (this.supervisor.info().pid !== undefined || this.supervisor.state !== 'stopped') await this.supervisor.stop();
  }

  /** Starts a prepared service and waits until it is healthy (or says why not). */
  async startAndWait(prepared: PreparedService, signal?: AbortSignal): Promise<{ ok: boolean; message: string }> {
    this.useRuntime(prepared.resolved.runtime);
    try {
      await this.supervisor.start(prepared.resolved, prepared.origin);
    } catch (error) {
      return { ok: false, message: (error as Error).message };
    }
    return this.supervisor.waitHealthy(signal);
  }

  /** Starts the service of an earlier release again (after a rollback); failures are logged, not thrown. */
  async startPrevious(previous: ServiceOrigin): Promise<void> {
    try {
      const prepared = await this.resolve(previous.spec, previous.releaseId, previous.revision);
      this.useRuntime(prepared.resolved.runtime);
      await this.supervisor.start(prepared.resolved, prepared.origin);
    } catch (error) {
      this.options.log.error({ err: error, configuration: this.options.configuration }, 'could not start the previous release\'s service again');
    }
  }

  /**
   * Makes what runs match a deployed configuration: starts its service when nothing runs (the
   * machine rebooted, or services were stopped), stops and forgets one whose section was removed.
   */
  async ensure(configuration: Configuration): Promise<void> {
    await this.init();
    const spec = serviceSpecOf(configuration.settings);
    if (!spec) {
      if (!this.known) return;
      await this.stop();
      await removeServiceRecord(this.options.confDir);
      this.known = false;
      this.options.onChange();
      return;
    }
    this.known = true;
    const state = this.supervisor.state;
    if (this.supervisor.info().pid !== undefined || state !== 'stopped') return;
    if (this.supervisor.running?.releaseId === configuration.id && this.supervisor.info().lastExit) return;
    const prepared = await this.prepare(configuration);
    if (!prepared) return;
    this.useRuntime(prepared.resolved.runtime);
    await this.supervisor.start(prepared.resolved, prepared.origin);
  }

  /** Restarts the service (the `restart` order). */
  async restart(): Promise<ServiceStatus> {
    if (!this.known || !this.supervisor.running) throw new ServiceSpecError(`configuration ${this.options.configuration} has no service here`);
    return this.supervisor.restart();
  }

  /** Lets go of the service without stopping it (the agent is exiting; the next one adopts it). */
  detach(): void {
    this.supervisor.detach();
  }
}
