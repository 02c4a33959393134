/**
 * Where the agent's blob cache gets bytes from: one GET /v1/blobs/{sha256}, optionally from an
 * offset. An interface rather than the HTTP client itself so the agent can add its own
 * authentication per request and tests can serve whatever they like.
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Readable } from 'node:stream';
import type { HttpClient } from '../../lib/http-client.ts';

/** One blob response; the body must be read or destroyed, or it holds its connection. */
export interface BlobResponse {
  status: number;
  body: Readable;
  headers: IncomingHttpHeaders;
}

/**
 * Opens blobs on a server. With `range`, the request carries `Range: bytes=<start>-`; the server
 * may still answer 200 with the whole blob, and the cache copes. Network failures reject with the
 * HTTP client's ClientError; HTTP errors resolve with their status.
 */
export interface BlobSource {
  open(sha256: string, range?: { start: number }, options?: { signal?: AbortSignal }): Promise<BlobResponse>;
}

/** A BlobSource over Strata's HTTP client; `headers` is asked before each request with its path (fresh, signed auth). */
export function createHttpBlobSource(
  client: HttpClient,
  headers: (path: string) => Record<string, string> | Promise<Record<string, string>> = () => ({}),
): BlobSource {
  return {
    async open(sha256, range, options) {
      const path = `/v1/blobs/${sha256}`;
      const extra: Record<string, string> = { ...(await headers(path)) };
      if (range !== undefined) extra.range = `bytes=${range.start}-`;
      const response = await client.request({
        method: 'GET',
        path,
        headers: extra,
        ...(options?.signal === undefined ? {} : { signal: options.signal }),
      });
      return { status: response.status, body: response.body, headers: response.headers };
    },
  };
}
