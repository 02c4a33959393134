/**
 * The agent's authenticated conversation with the server over HTTP: every request is signed
 * with the agent's Ed25519 key (see `src/protocol/agent.ts`), and the server's CA from the
 * identity is the only trust anchor.
 */
import { createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { createHttpClient, type HttpClient } from '../lib/http-client.ts';
import { StrataError } from '../core/errors.ts';
import { isErrorCode } from '../protocol/error-codes.ts';
import { agentSigningInput, DesiredStateSchema, type DesiredState, type StatusReport } from '../protocol/agent.ts';
import { STRATA_VERSION } from '../lib/version.ts';
import type { Identity } from './identity.ts';
import { createHttpBlobSource, type BlobSource } from './fetch/blob-source.ts';

/** The Authorization header value for one request. */
export function agentAuthorization(name: string, key: KeyObject, method: string, path: string, now = Date.now()): string {
  const signature = sign(null, Buffer.from(agentSigningInput(name, now, method, path)), key).toString('base64url');
  return `StrataAgent ${name}.${now}.${signature}`;
}

/** Signed requests to the server on behalf of one agent. */
export class ServerApi {
  readonly identity: Identity;
  readonly server: string;
  private readonly key: KeyObject;
  private readonly client: HttpClient;

  constructor(identity: Identity, server = identity.server) {
    this.identity = identity;
    this.server = server;
    this.key = createPrivateKey(identity.privateKey);
    this.client = createHttpClient({ baseUrl: server, caPem: identity.caPem, userAgent: `strata-agent/${STRATA_VERSION}` });
  }

  /** The signed Authorization header for a request. */
  authorization(method: string, path: string): string {
    return agentAuthorization(this.identity.name, this.key, method, path);
  }

  /** Throws the server's error (code and message) for a failed response. */
  private async failure(response: { status: number; json<T>(): Promise<T> }): Promise<never> {
    const body = await response.json<{ code?: string; message?: string }>().catch(() => ({}) as { code?: string; message?: string });
    const code = isErrorCode(body.code) ? body.code : response.status === 401 ? 'UNAUTHENTICATED' : 'INTERNAL';
    throw new StrataError(code, body.message ?? `server answered ${response.status}`);
  }

  /** The full desired state (the ground truth re-read every poll interval). */
  async desired(): Promise<DesiredState> {
    const path = '/v1/agent/desired';
    const response = await this.client.request({ method: 'GET', path, headers: { authorization: this.authorization('GET', path) } });
    if (response.status !== 200) return this.failure(response);
    return DesiredStateSchema.parse(await response.json());
  }

  /** Sends a status report. */
  async report(report: StatusReport): Promise<void> {
    const path = '/v1/agent/status';
    const response = await this.client.request({ method: 'POST', path, json: report, headers: { authorization: this.authorization('POST', path) } });
    if (response.status >= 400) return this.failure(response);
    response.body.resume();
  }

  /** Where the blob cache downloads from: this server, each request signed. */
  blobSource(): BlobSource {
    return createHttpBlobSource(this.client, (path) => ({ authorization: this.authorization('GET', path) }));
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.client.close();
  }
}
