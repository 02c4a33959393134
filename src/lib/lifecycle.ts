/**
 * Process lifecycle for long-running commands: a small state machine (starting → running →
 * stopping → stopped) whose transitions are logged and checked, an idempotent `shutdown` with a
 * deadline, and signal handling where a second SIGINT/SIGTERM forces the exit.
 */
import type { Logger } from './logger.ts';

/** The states of a long-running process. */
export type LifecycleState = 'starting' | 'running' | 'stopping' | 'stopped';

const ALLOWED: Record<LifecycleState, LifecycleState[]> = {
  starting: ['running', 'stopping'],
  running: ['stopping'],
  stopping: ['stopped'],
  stopped: [],
};

/** Tracks a process's state and runs its shutdown once. */
export class Lifecycle {
  private current: LifecycleState = 'starting';
  private stopping: Promise<void> | undefined;
  private readonly log: Logger;
  private readonly deadlineMs: number;
  private readonly cleanups: (() => Promise<void>)[] = [];

  constructor(log: Logger, options: { deadlineMs: number }) {
    this.log = log;
    this.deadlineMs = options.deadlineMs;
  }

  /** The current state. */
  get state(): LifecycleState {
    return this.current;
  }

  /** Moves to `next`, refusing transitions the machine does not allow. */
  transition(next: LifecycleState): void {
    if (!ALLOWED[this.current].includes(next)) throw new Error(`illegal lifecycle transition ${this.current} → ${next}`);
    this.log.info({ from: this.current, to: next }, `lifecycle ${next}`);
    this.current = next;
  }

  /** Registers work to do on shutdown; cleanups run in reverse order of registration. */
  onShutdown(cleanup: () => Promise<void>): void {
    this.cleanups.push(cleanup);
  }

  /** Stops once, whatever the number of callers; gives up waiting after the deadline. */
  shutdown(reason: string): Promise<void> {
    this.stopping ??= (async () => {
      this.log.info({ reason }, 'shutting down');
      this.transition('stopping');
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((resolve) => {
        timer = setTimeout(() => {
          this.log.warn({ deadlineMs: this.deadlineMs }, 'shutdown deadline passed; stopping anyway');
          resolve();
        }, this.deadlineMs);
        timer.unref();
      });
      const work = (async () => {
        for (const cleanup of [...this.cleanups].reverse()) {
          await cleanup().catch((error: unknown) => this.log.error({ err: error }, 'shutdown step failed'));
        }
      })();
      await Promise.race([work, deadline]);
      clearTimeout(timer);
      this.transition('stopped');
    })();
    return this.stopping;
  }

  /** Shuts down on SIGINT/SIGTERM; a second signal exits at once with status 130. */
  handleSignals(exit: (code: number) => void = (code) => process.exit(code)): void {
    let received = 0;
    const onSignal = (signal: NodeJS.Signals): void => {
      received += 1;
      if (received > 1) {
        this.log.warn({ signal }, 'second signal: exiting now');
        exit(130);
        return;
      }
      void this.shutdown(`signal ${signal}`).then(() => exit(0));
    };
    process.on('SIGINT', onSignal);
    process.on('SIGTERM', onSignal);
  }
}
