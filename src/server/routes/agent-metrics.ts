/**
 * The fleet's vital signs, from the summaries agents send on their channels (kept in memory by
 * every server replica, `src/server/metrics/history.ts`): one agent's recent history, and the latest
 * summary of every agent with its labels, presence and each configuration's phase (`strata top`).
 */
import { z } from 'zod';
import { Name } from '../../protocol/names.ts';
import { AgentMetricsSchema, FleetTopSchema, type TopRow } from '../../protocol/metrics.ts';
import { matches } from '../../protocol/selector.ts';
import { trackedConfigurations } from '../agents/desired.ts';
import { agentNotFound, statusesOf } from '../agents/status.ts';
import { selectorOf } from '../orders/targets.ts';
import type { App, RouteContext } from '../build-app.ts';
import { fleetSnapshot } from './agents.ts';

const AgentParams = z.object({ name: Name });
const TopQuery = z.object({ selector: z.string().max(4096).optional() });

/** Registers GET /v1/agents/{name}/metrics and GET /v1/fleet/top. */
export function registerAgentMetricsRoutes(app: App, { store, hub }: RouteContext): void {
  app.get('/v1/agents/:name/metrics', {
    config: { access: 'viewer' },
    schema: {
      summary: "One agent's recent metrics summaries, oldest first",
      description: 'Kept in memory by every server replica (the last `keep` summaries; the replica the agent is connected to shares them); empty after a restart until the agent sends its next one.',
      params: AgentParams, response: { 200: AgentMetricsSchema },
    },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof AgentParams>;
    const agent = await store.getAgent(name);
    if (!agent) throw agentNotFound(name);
    return { agent: name, online: hub.presence.get(name).online && !agent.revokedAt, keep: hub.metrics.perAgent, history: hub.metrics.history(name) };
  });

  app.get('/v1/fleet/top', {
    config: { access: 'viewer' },
    schema: {
      summary: 'The latest metrics summary of every agent (not revoked), with labels, presence and configuration phases',
      description: 'With `selector`, only the agents whose labels match it. `metrics` is null for an agent this server has not heard from since it started.',
      querystring: TopQuery, response: { 200: FleetTopSchema },
    },
  }, async (request) => {
    const query = request.query as z.infer<typeof TopQuery>;
    const selector = query.selector === undefined ? undefined : selectorOf(query.selector);
    const fleet = await fleetSnapshot(store);
    const agents: TopRow[] = [];
    for (const agent of fleet.agents) {
      if (agent.revokedAt || (selector && !matches(selector, agent.labels))) continue;
      const statuses = statusesOf(agent);
      agents.push({
        name: agent.name, labels: agent.labels, online: hub.presence.get(agent.name).online,
        metrics: hub.metrics.latest(agent.name) ?? null,
        configurations: trackedConfigurations(agent, fleet.assignments).map((name) => ({ configuration: name, phase: statuses.get(name)?.phase ?? 'unknown' })),
      });
    }
    return { agents };
  });
}
