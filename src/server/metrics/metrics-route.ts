/**
 * GET /metrics, the server's Prometheus endpoint, and the hook that times every request for it.
 * It needs a viewer token, unless the server runs with `--metrics-public` (then anyone who can
 * reach the listen address can scrape it; it shows counts, never names or secrets).
 */
import type { App } from '../build-app.ts';
import type { ServerMetrics } from './server-metrics.ts';

/** Times every request and registers GET /metrics. */
export function registerMetricsRoute(app: App, metrics: ServerMetrics, options: { public: boolean }): void {
  app.addHook('onResponse', async (request, reply) => {
    metrics.observeRequest(request.method, request.routeOptions.url ?? 'unmatched', reply.statusCode, reply.elapsedTime / 1000);
  });
  app.get('/metrics', {
    config: { access: options.public ? 'public' : 'viewer' },
    schema: {
      summary: "The server's Prometheus metrics (text exposition format)",
      description: 'Connected agents, orders, deploys by phase, request latencies, store sizes, process metrics. Needs a viewer token unless the server runs with `--metrics-public`.',
      ...(options.public ? { security: [] } : {}),
    },
  }, async (_request, reply) => {
    const { contentType, text } = await metrics.render();
    return reply.header('content-type', contentType).header('cache-control', 'no-store').send(text);
  });
}
