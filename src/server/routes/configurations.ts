/**
 * Configurations: addconf, changeconf, bumpconf, showconf, configurations, delconf, and Strata's
 * history and rollback, plus the deploy-tools JSON rendering agents and old tools read.
 */
import { z } from 'zod';
import { ChangeLayerBody, ChangeLayerResultSchema, ConfigurationSchema, PutConfigurationBody, RollbackBody } from '../../protocol/api.ts';
import { Name } from '../../protocol/names.ts';
import { renderDeployToolsJson } from '../../core/deploy-tools-json.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';

const ConfigParams = z.object({ name: Name });
const LayerParams = z.object({ name: Name, component: Name });
const DeleteQuery = z.object({ force: z.enum(['true', 'false']).optional(), expectedRevision: z.coerce.number().int().min(1).optional() });

/** Registers the /v1/configurations routes. */
export function registerConfigurationRoutes(app: App, { store, registry }: RouteContext): void {
  app.get('/v1/configurations', {
    config: { access: 'viewer' },
    schema: { summary: 'List configurations (current revisions)', response: { 200: z.object({ configurations: z.array(ConfigurationSchema) }) } },
  }, async () => ({ configurations: await store.listConfigurations() }));

  app.get('/v1/configurations/:name', {
    config: { access: 'viewer' },
    schema: { summary: "A configuration's current revision (showconf)", params: ConfigParams, response: { 200: ConfigurationSchema } },
  }, async (request) => registry.configuration((request.params as z.infer<typeof ConfigParams>).name));

  app.get('/v1/configurations/:name/deploy-tools.json', {
    config: { access: 'viewer' },
    schema: { summary: 'The configuration in deploy-tools JSON (configs/NAME.json)', params: ConfigParams },
  }, async (request, reply) => {
    const configuration = await registry.configuration((request.params as z.infer<typeof ConfigParams>).name);
    return reply.type('application/json; charset=utf-8').send(renderDeployToolsJson(configuration));
  });

  app.put('/v1/configurations/:name', {
    config: { access: 'deployer' },
    schema: {
      summary: 'Create or replace a configuration (addconf); replacing needs force or expectedRevision',
      params: ConfigParams, body: PutConfigurationBody, response: { 200: ConfigurationSchema },
    },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof ConfigParams>;
    const body = request.body as z.infer<typeof PutConfigurationBody>;
    return registry.putConfiguration(principalOf(request).actor, {
      name, layers: body.layers,
      ...(body.settings ? { settings: body.settings } : {}),
      ...(body.force === undefined ? {} : { force: body.force }),
      ...(body.expectedRevision === undefined ? {} : { expectedRevision: body.expectedRevision }),
    });
  });

  app.patch('/v1/configurations/:name/layers/:component', {
    config: { access: 'deployer' },
    schema: {
      summary: 'Point one layer at a version (changeconf) or at the newest version (bumpconf, body {"latest":true})',
      params: LayerParams, body: ChangeLayerBody, response: { 200: ChangeLayerResultSchema },
    },
  }, async (request) => {
    const { name, component } = request.params as z.infer<typeof LayerParams>;
    const body = request.body as z.infer<typeof ChangeLayerBody>;
    const actor = principalOf(request).actor;
    if ('version' in body) return registry.changeLayer(actor, { name, component, version: body.version });
    return registry.bumpLayer(actor, { name, component });
  });

  app.get('/v1/configurations/:name/history', {
    config: { access: 'viewer' },
    schema: { summary: 'Every revision, oldest first', params: ConfigParams, response: { 200: z.object({ revisions: z.array(ConfigurationSchema) }) } },
  }, async (request) => ({ revisions: await registry.history((request.params as z.infer<typeof ConfigParams>).name) }));

  app.post('/v1/configurations/:name/rollback', {
    config: { access: 'deployer' },
    schema: { summary: 'Write a new revision equal to an earlier one (default: the previous)', params: ConfigParams, body: RollbackBody, response: { 200: ConfigurationSchema } },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof ConfigParams>;
    const { to } = request.body as z.infer<typeof RollbackBody>;
    return registry.rollback(principalOf(request).actor, { name, ...(to === undefined ? {} : { to }) });
  });

  app.delete('/v1/configurations/:name', {
    config: { access: 'deployer' },
    schema: { summary: 'Delete a configuration and its history (delconf); needs force=true', params: ConfigParams, querystring: DeleteQuery, response: { 204: z.null() } },
  }, async (request, reply) => {
    const { name } = request.params as z.infer<typeof ConfigParams>;
    const query = request.query as z.infer<typeof DeleteQuery>;
    await registry.deleteConfiguration(principalOf(request).actor, {
      name, force: query.force === 'true',
      ...(query.expectedRevision === undefined ? {} : { expectedRevision: query.expectedRevision }),
    });
    return reply.code(204).send();
  });
}
