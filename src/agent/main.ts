/**
 * `strata agent`: builds the agent from parsed options, runs it as a daemon (until a signal, or
 * until the server refuses it) or once, and maps the outcome to an exit status.
 */
import type { Logger } from '../lib/logger.ts';
import { Lifecycle } from '../lib/lifecycle.ts';
import { Agent, type AgentOptions } from './agent.ts';
import { createAgentLogger } from './agent-log.ts';

/** How the agent should run. */
export type AgentRun = Omit<AgentOptions, 'log'> & { once: boolean; logLevel: string };

/** Runs the agent; resolves with the exit status. */
export async function runAgent(run: AgentRun, io: { logger?: Logger } = {}): Promise<number> {
  // Also written to DIR/agent.log, which the `logs` order reads back.
  const log = io.logger ?? createAgentLogger({ dir: run.dir, level: run.logLevel });
  const agent = new Agent({ ...run, log });
  if (run.once) {
    try {
      return (await agent.runOnce()) ? 0 : 1;
    } finally {
      await agent.shutdown();
    }
  }
  const lifecycle = new Lifecycle(log, { deadlineMs: 15_000 });
  lifecycle.onShutdown(() => agent.shutdown());
  await agent.start();
  lifecycle.transition('running');
  lifecycle.handleSignals();
  const reason = await agent.refused;
  log.error({ reason }, 'the server refuses this agent (revoked?); enroll again with a new join token');
  await lifecycle.shutdown('refused by the server');
  return 1;
}
