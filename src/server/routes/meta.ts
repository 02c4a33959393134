/** Routes about the server itself: health, the OpenAPI document, and who the caller is. */
import { HealthSchema, WhoAmISchema } from '../../protocol/api.ts';
import { principalOf, type App, type RouteContext } from '../build-app.ts';

/** Registers GET /v1/health, GET /v1/openapi.json and GET /v1/whoami. */
export function registerMetaRoutes(app: App, context: RouteContext): void {
  app.get('/v1/health', {
    config: { access: 'public' },
    schema: { summary: 'Liveness and version', security: [], response: { 200: HealthSchema } },
  }, async () => ({ ok: true, version: context.version, store: context.store.kind, replica: context.hub.replica, peers: context.hub.bus.peers() }));

  app.get('/v1/openapi.json', {
    config: { access: 'public' },
    schema: { summary: 'This OpenAPI document', security: [], hide: true },
  }, async () => app.swagger());

  app.get('/v1/whoami', {
    config: { access: 'viewer' },
    schema: { summary: 'The caller and its role', response: { 200: WhoAmISchema } },
  }, async (request) => {
    const principal = principalOf(request);
    return { tokenId: principal.tokenId, name: principal.name, role: principal.role };
  });
}
