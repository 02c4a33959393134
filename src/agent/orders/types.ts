/** What every order handler receives and returns. */
import type { Logger } from '../../lib/logger.ts';
import type { HostResult } from '../../protocol/orders.ts';
import type { AgentConfig } from '../agent-config.ts';
import type { SyncRegistry } from './sync-registry.ts';
import type { ServiceStatus } from '../../protocol/agent.ts';

/** The agent-wide things handlers use. */
export interface OrderEnvironment {
  /** The agent directory (agent.log, `<configuration>/last-hook.log`). */
  dir: string;
  /** The agent's name, as enrolled. */
  name: string;
  config: AgentConfig;
  /** The agent's own environment, from which commands inherit only a short list. */
  agentEnv: Record<string, string | undefined>;
  log: Logger;
  /** The sync runs in progress, one per group at most. */
  syncs: SyncRegistry;
  /** Restarts a configuration's service (the `restart` order); absent where the agent supervises none. */
  restartService?: (configuration: string) => Promise<ServiceStatus>;
}

/** One order's surroundings. */
export interface OrderContext extends OrderEnvironment {
  orderId: string;
  /** Aborted by `order-cancel`, by the deadline, or by the agent stopping; its reason says which. */
  signal: AbortSignal;
  /** Epoch milliseconds after which the server stops waiting. */
  deadline: number;
  /** Sends an `order-progress` message (dropped if the channel closed). */
  progress(content: unknown): void;
}

/** A handler's answer; the dispatcher adds `durationMs`. */
export type OrderOutcome = Omit<HostResult, 'durationMs'>;

/** Why an order's signal was aborted. */
export type AbortReason = 'cancelled' | 'deadline' | 'stopping';

/** The reason an aborted signal carries, as one of ours. */
export function abortReason(signal: AbortSignal): AbortReason {
  const reason: unknown = signal.reason;
  return reason === 'deadline' || reason === 'stopping' ? reason : 'cancelled';
}

/** Milliseconds left before `deadline`, never negative. */
export function remainingMs(deadline: number): number {
  return Math.max(0, deadline - Date.now());
}
