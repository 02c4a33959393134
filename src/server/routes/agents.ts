/** Operators' view of the fleet: list agents, show one, revoke one (its channel closes at once). */
import { z } from 'zod';
import { Name } from '../../protocol/names.ts';
import { isStrataError } from '../../core/errors.ts';
import { agentNotFound } from '../agents/status.ts';
import type { AgentRecord, Configuration, Store } from '../../store/contract.ts';
import { parseAssignments, trackedConfigurations, type ParsedAssignment } from '../agents/desired.ts';
import { agentDetail, agentSummary, AgentDetailSchema, AgentSummarySchema } from '../agents/views.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';
import { resolveTarget } from '../orders/targets.ts';

const AgentParams = z.object({ name: Name });
/** An order target as query parameters (`hosts` comma-separated), to show what it picks. */
const AgentsQuery = z.object({
  hosts: z.string().max(1_000_000).optional(),
  group: z.string().min(1).max(128).optional(),
  selector: z.string().max(4096).optional(),
});

/** What the fleet views are computed from, read once per request. */
export interface FleetSnapshot {
  agents: AgentRecord[];
  assignments: ParsedAssignment[];
  configurations: Map<string, Configuration>;
}

/** Reads agents, assignments and current configurations. */
export async function fleetSnapshot(store: Store): Promise<FleetSnapshot> {
  const [agents, assignments, configurations] = await Promise.all([store.listAgents(), store.listAssignments(), store.listConfigurations()]);
  return { agents, assignments: parseAssignments(assignments), configurations: new Map(configurations.map((c) => [c.name, c])) };
}

/** Registers GET /v1/agents, GET /v1/agents/{name} and POST /v1/agents/{name}/revoke. */
export function registerAgentRoutes(app: App, { store, registry, hub }: RouteContext): void {
  app.get('/v1/agents', {
    config: { access: 'viewer' },
    schema: {
      summary: 'Enrolled agents with their labels, presence and configurations',
      description: 'With one of `hosts` (comma-separated), `group` or `selector`: only the agents that target picks for an order (never revoked ones).',
      querystring: AgentsQuery, response: { 200: z.object({ agents: z.array(AgentSummarySchema) }) },
    },
  }, async (request) => {
    const query = request.query as z.infer<typeof AgentsQuery>;
    const fleet = await fleetSnapshot(store);
    if (query.hosts !== undefined || query.group !== undefined || query.selector !== undefined) {
      const hosts = query.hosts === undefined ? undefined : query.hosts.split(',').map((h) => h.trim()).filter((h) => h !== '');
      const picked = new Set((await resolveTarget(store, { ...(hosts ? { hosts } : {}), ...(query.group === undefined ? {} : { group: query.group }), ...(query.selector === undefined ? {} : { selector: query.selector }) })).hosts);
      fleet.agents = fleet.agents.filter((agent) => picked.has(agent.name));
    }
    return { agents: fleet.agents.map((agent) => agentSummary(agent, trackedConfigurations(agent, fleet.assignments), fleet.configurations, hub.presence.get(agent.name))) };
  });

  app.get('/v1/agents/:name', {
    config: { access: 'viewer' },
    schema: { summary: 'One agent: labels, inventory, configurations and the last hook output', params: AgentParams, response: { 200: AgentDetailSchema } },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof AgentParams>;
    const fleet = await fleetSnapshot(store);
    const agent = fleet.agents.find((a) => a.name === name);
    if (!agent) throw agentNotFound(name);
    return agentDetail(agent, trackedConfigurations(agent, fleet.assignments), fleet.configurations, hub.presence.get(name));
  });

  app.post('/v1/agents/:name/revoke', {
    config: { access: 'admin' },
    schema: { summary: 'Revoke an agent: its requests are refused and its channel closes at once', params: AgentParams, response: { 200: AgentSummarySchema } },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof AgentParams>;
    const revoked = await registry.audited(principalOf(request).actor, 'agent.revoke', name, {}, () => revokeAgent(store, name));
    hub.revoke(name);
    return agentSummary(revoked, [], new Map(), { online: false });
  });
}

/** Marks an agent revoked (keeping an earlier revocation), retrying on concurrent writes. */
async function revokeAgent(store: Store, name: string): Promise<AgentRecord> {
  for (let attempt = 1; ; attempt++) {
    const current = await store.getAgent(name);
    if (!current) throw agentNotFound(name);
    if (current.revokedAt) return current;
    const { revision, ...fields } = current;
    try {
      return await store.putAgent({ ...fields, revokedAt: new Date().toISOString() }, revision);
    } catch (error) {
      if (!isStrataError(error, 'REVISION_CONFLICT') || attempt >= 5) throw error;
    }
  }
}
