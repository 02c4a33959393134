/** GET /v1/configurations/{name}/status: how far a configuration's current revision has reached its agents. */
import { z } from 'zod';
import { Name } from '../../protocol/names.ts';
import { trackedConfigurations } from '../agents/desired.ts';
import { statusesOf } from '../agents/status.ts';
import { configView, ConfigurationStatusSchema } from '../agents/views.ts';
import type { App, RouteContext } from '../build-app.ts';
import { fleetSnapshot } from './agents.ts';

const ConfigParams = z.object({ name: Name });

/** Registers GET /v1/configurations/{name}/status. */
export function registerConfigurationStatusRoute(app: App, { store, registry, hub }: RouteContext): void {
  app.get('/v1/configurations/:name/status', {
    config: { access: 'viewer' },
    schema: { summary: 'Rollout status: agents tracking it, how many run the current revision, which failed and why', params: ConfigParams, response: { 200: ConfigurationStatusSchema } },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof ConfigParams>;
    const configuration = await registry.configuration(name);
    const fleet = await fleetSnapshot(store);
    const rows = fleet.agents
      .filter((agent) => !agent.revokedAt && trackedConfigurations(agent, fleet.assignments).includes(name))
      .map((agent) => {
        const { configuration: _c, revision: _r, id: _i, ...view } = configView(name, configuration, statusesOf(agent).get(name));
        return { agent: agent.name, online: hub.presence.get(agent.name).online, ...view };
      });
    return {
      configuration: name, revision: configuration.revision, id: configuration.id, agents: rows.length,
      upToDate: rows.filter((r) => r.upToDate).length, failed: rows.filter((r) => r.phase === 'failed').length,
      online: rows.filter((r) => r.online).length, rows,
    };
  });
}
