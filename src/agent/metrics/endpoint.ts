/**
 * The agent's local metrics endpoint (`--metrics-listen`, off by default), on node:http so that
 * an agent without it loads nothing: `GET /metrics` (Prometheus text) and `GET /debug/vars`
 * (expvar-style JSON), 404 for any other path, 405 for any other method. With a token, every
 * request needs `Authorization: Bearer <token>`, compared in constant time. Requests are bounded:
 * small headers, short timeouts, few connections, no bodies read.
 */
import { createHash, timingSafeEqual } from 'node:crypto';
import { lstat, unlink, chmod } from 'node:fs/promises';
import { once } from 'node:events';
import type { Logger } from '../../lib/logger.ts';
import { StrataError } from '../../core/errors.ts';
import { PROMETHEUS_CONTENT_TYPE } from './prometheus-text.ts';
import { expvarJson, prometheusText, type AgentStats } from './exposition.ts';
import { formatMetricsListen, isLocalOnly, type MetricsListen } from './listen-address.ts';
import { http } from '../../lib/node-http.ts';
import type { Sample } from './sampler.ts';

/** The endpoint's limits. */
export const ENDPOINT_LIMITS = { maxHeaderBytes: 8 * 1024, headersTimeoutMs: 5_000, requestTimeoutMs: 10_000, maxConnections: 32 } as const;

/** What the endpoint serves from. */
export interface EndpointSources {
  sample(): Sample | undefined;
  agent(): AgentStats;
}

/** A listening endpoint. */
export interface MetricsEndpoint {
  /** Where it listens, with the real port when 0 was asked for (`127.0.0.1:9464`, `unix:/path`). */
  address: string;
  close(): Promise<void>;
}

function digest(text: string): Buffer {
  return createHash('sha256').update(text).digest();
}

/** True when the request carries the token (comparing fixed-length digests, in constant time). */
function authorized(header: string | undefined, tokenDigest: Buffer | undefined): boolean {
  if (!tokenDigest) return true;
  const match = /^Bearer\s+(\S+)$/i.exec(header ?? '');
  return match !== null && timingSafeEqual(digest(match[1]!), tokenDigest);
}

/** Starts the endpoint; a non-local address without a token is refused with BAD_REQUEST. */
export async function startMetricsEndpoint(options: { listen: MetricsListen; token?: string; sources: EndpointSources; log: Logger }): Promise<MetricsEndpoint> {
  const { listen, sources, log } = options;
  if (!isLocalOnly(listen) && !options.token) {
    throw new StrataError('BAD_REQUEST', `--metrics-listen ${formatMetricsListen(listen)} is not a loopback address or Unix socket: give --metrics-token-file FILE to require a token there`);
  }
  const tokenDigest = options.token ? digest(options.token) : undefined;
  const server = http.createServer({ maxHeaderSize: ENDPOINT_LIMITS.maxHeaderBytes, requestTimeout: ENDPOINT_LIMITS.requestTimeoutMs, headersTimeout: ENDPOINT_LIMITS.headersTimeoutMs }, (request, response) => {
    const send = (status: number, type: string, body: string): void => {
      response.writeHead(status, { 'content-type': type, 'cache-control': 'no-store', 'content-length': Buffer.byteLength(body) });
      response.end(request.method === 'HEAD' ? undefined : body);
    };
    // Nothing here takes a body; one that is sent is discarded, not buffered.
    request.resume();
    if (!authorized(request.headers.authorization, tokenDigest)) {
      response.setHeader('www-authenticate', 'Bearer');
      return send(401, 'text/plain; charset=utf-8', 'a bearer token is required\n');
    }
    if (request.method !== 'GET' && request.method !== 'HEAD') {
      response.setHeader('allow', 'GET, HEAD');
      return send(405, 'text/plain; charset=utf-8', 'only GET and HEAD\n');
    }
    const pathname = (request.url ?? '/').split('?')[0];
    try {
      if (pathname === '/metrics') return send(200, PROMETHEUS_CONTENT_TYPE, prometheusText(sources.sample(), sources.agent()));
      if (pathname === '/debug/vars') return send(200, 'application/json; charset=utf-8', expvarJson(sources.sample(), sources.agent()));
    } catch (error) {
      log.error({ err: error }, 'metrics endpoint failed');
      return send(500, 'text/plain; charset=utf-8', 'internal error\n');
    }
    send(404, 'text/plain; charset=utf-8', 'not found: try /metrics or /debug/vars\n');
  });
  server.maxConnections = ENDPOINT_LIMITS.maxConnections;
  server.keepAliveTimeout = 5_000;

  if (listen.kind === 'unix') await removeStaleSocket(listen.path);
  server.listen(listen.kind === 'unix' ? { path: listen.path } : { host: listen.host, port: listen.port });
  try {
    await Promise.race([once(server, 'listening'), once(server, 'error').then(([error]) => Promise.reject(error))]);
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code ?? (error as Error).message;
    throw new StrataError('BAD_REQUEST', `--metrics-listen ${formatMetricsListen(listen)}: cannot listen there (${code})`, { cause: error });
  }
  if (listen.kind === 'unix') await chmod(listen.path, 0o600);
  const bound = server.address();
  const address = listen.kind === 'unix' || typeof bound !== 'object' || bound === null
    ? formatMetricsListen(listen)
    : formatMetricsListen({ kind: 'tcp', host: listen.host, port: bound.port });
  log.info({ metricsAddress: address, token: tokenDigest !== undefined }, 'metrics endpoint listening');
  return {
    address,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A socket file left by an agent that did not exit cleanly would make listen fail; other files are left alone. */
async function removeStaleSocket(file: string): Promise<void> {
  const stat = await lstat(file).catch(() => undefined);
  if (stat?.isSocket()) await unlink(file);
}
