/**
 * Builds the HTTP API as a Fastify app without listening, so tests can `inject()` requests and
 * `main.ts` decides where to listen. Every route is validated by zod schemas, documented in the
 * OpenAPI document, authenticated before its body is read, and rendered through one error handler.
 */
import { pipeline } from 'node:stream';
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import fastifySwagger from '@fastify/swagger';
import fastifyWebsocket from '@fastify/websocket';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import type { Logger } from '../lib/logger.ts';
import type { Store } from '../store/contract.ts';
import { Registry } from '../core/registry.ts';
import { StrataError } from '../core/errors.ts';
import type { ArchiveLimits } from '../core/archive/inspect.ts';
import { installErrorHandlers } from './errors.ts';
import { AuthThrottle, authorizeRequest, type Access, type Principal } from './auth.ts';
import { agentBodyCheck, type AgentPrincipal } from './agent-auth.ts';
import { DEFAULT_CHANNEL_TIMING, FleetHub, type ChannelTiming } from './channel/hub.ts';
import type { ClusterBus } from './cluster/bus.ts';
import { registerMetaRoutes } from './routes/meta.ts';
import { registerBlobRoutes } from './routes/blobs.ts';
import { registerComponentRoutes } from './routes/components.ts';
import { registerConfigurationRoutes } from './routes/configurations.ts';
import { registerTokenRoutes } from './routes/tokens.ts';
import { registerAuditRoutes } from './routes/audit.ts';
import { registerAgentEnrollRoute } from './routes/agent-enroll.ts';
import { registerAgentStateRoutes } from './routes/agent-state.ts';
import { registerAgentRoutes } from './routes/agents.ts';
import { registerAssignmentRoutes } from './routes/assignments.ts';
import { registerConfigurationStatusRoute } from './routes/configuration-status.ts';
import { registerOrderRoutes } from './routes/orders.ts';
import { registerGroupRoutes } from './routes/groups.ts';
import { registerAgentMetricsRoutes } from './routes/agent-metrics.ts';
import { ServerMetrics } from './metrics/server-metrics.ts';
import { registerMetricsRoute } from './metrics/metrics-route.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Who may call the route; every route must say. */
    access?: Access;
    /** An agent may call the route too (with its own signature); the handler limits what it sees. */
    alsoAgents?: boolean;
  }
  interface FastifyRequest {
    /** The authenticated operator; set before the body is read on every non-public route. */
    principal?: Principal;
    /** The authenticated agent, on agent routes and routes that set `alsoAgents`. */
    agent?: AgentPrincipal;
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
  /** Agent channel heartbeat timing; tests shorten it. */
  channel?: ChannelTiming;
  /** The bus to the other server replicas; a single server (LocalBus) when absent. The hub closes it. */
  cluster?: ClusterBus;
  /** Serve GET /metrics without a token (`--metrics-public`). */
  metricsPublic?: boolean;
}

/** Largest message an agent may send on its channel. */
const MAX_CHANNEL_MESSAGE_BYTES = 1024 * 1024;

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
      components: {
        securitySchemes: {
          bearer: { type: 'http', scheme: 'bearer' },
          agent: { type: 'apiKey', in: 'header', name: 'Authorization', description: 'StrataAgent <name>.<unix ms>.<Ed25519 signature, base64url>' },
        },
      },
      security: [{ bearer: [] }],
    },
    transform: jsonSchemaTransform,
  });

  const hub = new FleetHub(deps.store, deps.logger.child({ component: 'channel' }), deps.channel ?? DEFAULT_CHANNEL_TIMING, deps.cluster);
  await hub.start();
  // Close agent channels (and stop the watch) first, so app.close() does not wait on open sockets.
  app.addHook('preClose', async () => hub.close());
  // Registered before the auth hook: its own onRequest hook marks upgrade requests, so that a
  // refused upgrade's socket is destroyed after the 401 instead of lingering and holding close().
  await app.register(fastifyWebsocket, { options: { maxPayload: MAX_CHANNEL_MESSAGE_BYTES } });

  const throttle = new AuthThrottle();
  app.addHook('onRequest', async (request) => authorizeRequest(deps.store, throttle, request));
  // An agent's body must be the one it signed: checked as it is read, before any handler sees it.
  app.addHook('preParsing', async (request, _reply, payload) => (request.agent?.bodySha256 === undefined ? payload : pipeline(payload, agentBodyCheck(request.agent.bodySha256), () => {})));

  const registry = new Registry(deps.store);
  const metrics = new ServerMetrics({ store: deps.store, hub, log: deps.logger });
  registerMetricsRoute(app, metrics, { public: deps.metricsPublic === true });
  const context: RouteContext = { ...deps, registry, hub, throttle, metrics };
  registerMetaRoutes(app, context);
  registerBlobRoutes(app, context);
  registerComponentRoutes(app, context);
  registerConfigurationRoutes(app, context);
  registerTokenRoutes(app, context);
  registerAuditRoutes(app, context);
  registerAgentEnrollRoute(app, context);
  registerAgentStateRoutes(app, context);
  registerAgentRoutes(app, context);
  registerAssignmentRoutes(app, context);
  registerConfigurationStatusRoute(app, context);
  registerOrderRoutes(app, context);
  registerGroupRoutes(app, context);
  registerAgentMetricsRoutes(app, context);
  await app.ready();
  return app;
}

/** What route modules receive. */
export type RouteContext = AppDeps & { registry: Registry; hub: FleetHub; throttle: AuthThrottle; metrics: ServerMetrics };
