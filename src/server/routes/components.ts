/** Components and their versions: deployctl's components, showcomp, addver, delver and delcomp. */
import { z } from 'zod';
import { AddVersionBody, ComponentSummarySchema, VersionSchema } from '../../protocol/api.ts';
import { Name } from '../../protocol/names.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';

const ComponentParams = z.object({ name: Name });
const VersionParams = z.object({ name: Name, version: Name });

/** Registers the /v1/components routes. */
export function registerComponentRoutes(app: App, { store, registry }: RouteContext): void {
  app.get('/v1/components', {
    config: { access: 'viewer' },
    schema: { summary: 'List components', response: { 200: z.object({ components: z.array(ComponentSummarySchema) }) } },
  }, async () => ({ components: await store.listComponents() }));

  app.get('/v1/components/:name', {
    config: { access: 'viewer' },
    schema: { summary: "A component's versions, oldest first", params: ComponentParams, response: { 200: z.object({ name: z.string(), versions: z.array(VersionSchema) }) } },
  }, async (request) => {
    const { name } = request.params as z.infer<typeof ComponentParams>;
    return { name, versions: await store.listVersions(name) };
  });

  app.post('/v1/components/:name/versions', {
    config: { access: 'deployer' },
    schema: { summary: 'Add a version naming an uploaded blob (addver)', params: ComponentParams, body: AddVersionBody, response: { 201: VersionSchema } },
  }, async (request, reply) => {
    const { name } = request.params as z.infer<typeof ComponentParams>;
    const body = request.body as z.infer<typeof AddVersionBody>;
    const version = await registry.addVersion(principalOf(request).actor, { component: name, version: body.version, blob: body.blob });
    return reply.code(201).send(version);
  });

  app.delete('/v1/components/:name/versions/:version', {
    config: { access: 'deployer' },
    schema: { summary: 'Delete a version no configuration uses (delver)', params: VersionParams, response: { 204: z.null() } },
  }, async (request, reply) => {
    const { name, version } = request.params as z.infer<typeof VersionParams>;
    await registry.deleteVersion(principalOf(request).actor, { component: name, version });
    return reply.code(204).send();
  });

  app.delete('/v1/components/:name', {
    config: { access: 'deployer' },
    schema: { summary: 'Delete a component no configuration uses (delcomp)', params: ComponentParams, response: { 204: z.null() } },
  }, async (request, reply) => {
    const { name } = request.params as z.infer<typeof ComponentParams>;
    await registry.deleteComponent(principalOf(request).actor, { component: name });
    return reply.code(204).send();
  });
}
