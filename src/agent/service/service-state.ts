/**
 * A supervised service's reported state, when it last changed, and who waits on it: the one
 * piece the process and systemd supervisors share. A change is logged, wakes every waiter and
 * tells the owner (so the agent reports it).
 */
import type { Logger } from '../../lib/logger.ts';
import type { ServiceState } from './supervisor.ts';

/** What waiting for a service to become healthy ends with. */
export interface HealthOutcome {
  ok: boolean;
  message: string;
}

/** The state of one configuration's service. */
export class ServiceStateCell {
  private current: ServiceState = 'stopped';
  private changedAt = new Date().toISOString();
  private readonly waiters = new Set<() => void>();
  private readonly configuration: string;
  private readonly log: Logger;
  private readonly onChange: (() => void) | undefined;

  constructor(configuration: string, log: Logger, onChange?: () => void) {
    this.configuration = configuration;
    this.log = log;
    this.onChange = onChange;
  }

  get state(): ServiceState {
    return this.current;
  }

  /** When the state last changed (ISO time). */
  get since(): string {
    return this.changedAt;
  }

  /** Moves to `next`, logging why (`fields` join the log line); nothing when already there. */
  set(next: ServiceState, why?: string, fields: Record<string, unknown> = {}): void {
    if (next === this.current) return;
    this.log.info({ configuration: this.configuration, from: this.current, to: next, ...fields, why }, `service ${this.configuration}: ${next}`);
    this.current = next;
    this.changedAt = new Date().toISOString();
    this.notify();
    this.onChange?.();
  }

  /** Wakes every waiter without a change, so each looks again at what it waits for. */
  notify(): void {
    for (const waiter of [...this.waiters]) waiter();
  }

  /**
   * Resolves with `settle`'s answer the first time it gives one — now, or after any change or
   * `notify` — with `timedOut()`'s after `deadlineMs`, or as aborted when `signal` aborts.
   */
  waitFor(settle: (state: ServiceState) => HealthOutcome | undefined, deadlineMs: number, timedOut: () => HealthOutcome, signal?: AbortSignal): Promise<HealthOutcome> {
    return new Promise((resolve) => {
      const finish = (result: HealthOutcome): void => {
        clearTimeout(timer);
        this.waiters.delete(onChange);
        signal?.removeEventListener('abort', onAbort);
        resolve(result);
      };
      const onChange = (): void => {
        const outcome = settle(this.current);
        if (outcome) finish(outcome);
      };
      const onAbort = (): void => finish({ ok: false, message: 'aborted' });
      const timer = setTimeout(() => finish(timedOut()), deadlineMs);
      this.waiters.add(onChange);
      signal?.addEventListener('abort', onAbort, { once: true });
      onChange();
    });
  }
}
