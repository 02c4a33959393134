/**
 * The CLI's connection to a server: where it is, how to trust it, which token to send, and
 * turning error responses into one-line UserErrors carrying the server's stable code.
 */
import type { Readable } from 'node:stream';
import { createHttpClient, type HttpResponse, type RequestOptions } from '../lib/http-client.ts';
import { parseFingerprint } from '../lib/fingerprint.ts';
import { readFileSync } from 'node:fs';
import { STRATA_VERSION } from '../lib/version.ts';
import { UsageError, UserError, type CliContext } from './context.ts';

/** Connection flags every remote command accepts (each has a STRATA_* variable). */
export interface ConnectionOptions {
  server?: string;
  token?: string;
  fingerprint?: string;
  ca?: string;
}

/** A thin JSON client over the /v1 API. */
export interface Api {
  /** Sends a request and returns the parsed JSON body (undefined for 204); throws UserError on an error status. */
  call<T>(method: string, path: string, options?: { json?: unknown; query?: RequestOptions['query'] }): Promise<T>;
  /** Sends a request and returns the raw response, for streams; throws UserError on an error status. */
  raw(options: RequestOptions): Promise<HttpResponse>;
  close(): void;
}

/** Builds the API client from flags, falling back to STRATA_SERVER, STRATA_TOKEN, STRATA_FINGERPRINT, STRATA_CA. */
export function connect(context: CliContext, options: ConnectionOptions): Api {
  const server = options.server ?? context.env['STRATA_SERVER'];
  if (!server) throw new UsageError('no server given: set STRATA_SERVER (source <data>/admin.env) or pass --server URL');
  if (!/^https?:\/\/[^/]+\/?$/.test(server)) throw new UsageError(`invalid server URL ${JSON.stringify(server)}: write it like https://127.0.0.1:7443`);
  const token = options.token ?? context.env['STRATA_TOKEN'];
  const fingerprintText = options.fingerprint ?? context.env['STRATA_FINGERPRINT'];
  const caFile = options.ca ?? context.env['STRATA_CA'];
  let fingerprint: string | undefined;
  try {
    fingerprint = fingerprintText ? parseFingerprint(fingerprintText) : undefined;
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  let caPem: string | undefined;
  if (caFile) {
    try {
      caPem = readFileSync(caFile, 'utf8');
    } catch (error) {
      throw new UsageError(`cannot read CA file ${caFile}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`);
    }
  }
  const client = createHttpClient({
    baseUrl: server.replace(/\/$/, ''), userAgent: `strata-cli/${STRATA_VERSION}`,
    ...(token ? { token } : {}), ...(fingerprint ? { fingerprint } : {}), ...(caPem ? { caPem } : {}),
  });

  const raw = async (request: RequestOptions): Promise<HttpResponse> => {
    const response = await client.request(request);
    if (response.status < 400) return response;
    let body: { code?: string; message?: string; details?: Record<string, unknown> } = {};
    try {
      body = await response.json();
    } catch {
      // A body that is not our JSON error still yields a line with the status.
    }
    throw new UserError(body.message ?? `server answered ${response.status}`, { ...(body.code ? { code: body.code } : {}), ...(body.details ? { details: body.details } : {}) });
  };

  return {
    raw,
    async call<T>(method: string, path: string, options: { json?: unknown; query?: RequestOptions['query'] } = {}): Promise<T> {
      const response = await raw({ method, path, ...(options.json === undefined ? {} : { json: options.json }), ...(options.query ? { query: options.query } : {}) });
      if (response.status === 204) {
        response.body.resume();
        return undefined as T;
      }
      return response.json<T>();
    },
    close: () => client.close(),
  };
}

/** Uploads a stream as a blob; returns the server's upload result. */
export async function uploadBlob(api: Api, body: Readable, contentLength?: number): Promise<{ sha256: string; size: number; archive: { format: string; entries: number; unpackedBytes: number } }> {
  const response = await api.raw({
    method: 'POST', path: '/v1/blobs', body,
    headers: { 'content-type': 'application/octet-stream' },
    ...(contentLength === undefined ? {} : { contentLength }),
  });
  return response.json();
}
