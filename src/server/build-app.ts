/**
 * Builds the HTTP API as a Fastify app without listening, so tests can `inject()` requests and
 * `main.ts` decides where to listen. Every route is validated by zod schemas, documented in the
 * OpenAPI document, authenticated before its body is read, and rendered through one error handler.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../lib/logger.ts';
import type { Store } from '../store/contract.ts';
import { Registry } from '../core/registry.ts';
import { StrataError } from '../core/errors.ts';
import type { ArchiveLimits } from '../core/archive/inspect.ts';
import { installErrorHandlers, toStrataError } from './errors.ts';
import { authenticate, AuthThrottle, roleAllows, type Access, type Principal } from './auth.ts';
import { registerMetaRoutes } from './routes/meta.ts';
import { registerBlobRoutes } from './routes/blobs.ts';
import { registerComponentRoutes } from './routes/components.ts';
import { registerConfigurationRoutes } from './routes/configurations.ts';
import { registerTokenRoutes } from './routes/tokens.ts';
import { registerAuditRoutes } from './routes/audit.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; every route must say. */
    access?: Access;
  }
  interface FastifyRequest {
    /** The authenticated caller; set before the body is read on every non-public route. */
    principal?: Principal;
  }
}

/** Limits the server enforces on requests. */
export interface ServerLimits {
  /** Largest upload accepted, in bytes. */
  maxUploadBytes: number;
  /** Largest JSON body accepted, in bytes. */
  maxJsonBytes: number;
  archive: ArchiveLimits;
}

/** What the app needs; `main.ts` builds these from the configuration. */
export interface AppDeps {
  store: Store;
  logger: Logger;
  limits: ServerLimits;
  /** Strata's version, reported by /v1/health. */
  version: string;
  /** The CA fingerprint join tokens embed; absent when serving plain HTTP. */
  caFingerprint?: string;
  /** TLS material; plain HTTP when absent. */
  https?: { key: string; cert: string };
}

/** The app type routes register on. */
export type App = FastifyInstance;

/** The principal of an authenticated request (routes that are not public always have one). */
export function principalOf(request: { principal?: Principal }): Principal {
  if (!request.principal) throw new StrataError('UNAUTHENTICATED');
  return request.principal;
}

/** Builds the app; call `listen` on it, or `inject` in tests, and `close` when done. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    loggerInstance: deps.logger,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: deps.limits.maxJsonBytes,
    // Names may be up to 128 bytes, percent-encoded up to three times that.
    routerOptions: { maxParamLength: 512 },
    ...(deps.https ? { https: { key: deps.https.key, cert: deps.https.cert } } : {}),
  }).withTypeProvider<ZodTypeProvider>() as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  installErrorHandlers(app);

  await app.register(fastifySwagger, {
    openapi: {
      info: { title: 'Strata API', version: deps.version, description: 'Registry, configurations and fleet of a Strata server.' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const throttle = new AuthThrottle();
  app.addHook('onRequest', async (request) => {
    const access = request.routeOptions.config.access;
    if (access === undefined && request.routeOptions.url !== undefined) {
      throw new StrataError('INTERNAL', `route ${request.routeOptions.url} declares no access rule`);
    }
    if (access === undefined || access === 'public') return;
    const address = request.ip;
    throttle.check(address);
    try {
      request.principal = await authenticate(deps.store, request);
    } catch (error) {
      throttle.fail(address);
      if (request.method !== 'GET' && request.method !== 'HEAD') {
        await deps.store.appendAudit({ actor: `address:${address}`, action: 'auth.failed', target: request.routeOptions.url ?? request.url, result: toStrataError(error).code });
      }
      throw error;
    }
    throttle.succeed(address);
    if (!roleAllows(request.principal.role, access)) {
      throw new StrataError('FORBIDDEN', `role ${request.principal.role} may not do this; it needs ${access}`, { details: { role: request.principal.role, needed: access } });
    }
  });

  const registry = new Registry(deps.store);
  const context = { ...deps, registry };
  registerMetaRoutes(app, context);
  registerBlobRoutes(app, context);
  registerComponentRoutes(app, context);
  registerConfigurationRoutes(app, context);
  registerTokenRoutes(app, context);
  registerAuditRoutes(app, context);
  await app.ready();
  return app;
}

/** What route modules receive. */
export type RouteContext = AppDeps & { registry: Registry };
