/**
 * The agent's authenticated conversation with the server over HTTP: every request is signed
 * with the agent's Ed25519 key (see `src/protocol/agent.ts`), and the server's CA from the
 * identity is the only trust anchor. With several server replicas (`--server` as a
 * comma-separated list) it talks to one at a time and `failover` moves on to the next.
 */
import { createHash, createPrivateKey, sign, type KeyObject } from 'node:crypto';
import { Readable } from 'node:stream';
import { createHttpClient, isUnreachable, type HttpClient } from '../lib/http-client.ts';
import { StrataError } from '../core/errors.ts';
import { isErrorCode } from '../protocol/error-codes.ts';
import { AGENT_BODY_HASH_HEADER, agentSigningInput, DesiredStateSchema, type DesiredState, type StatusReport } from '../protocol/agent.ts';
import { STRATA_VERSION } from '../lib/version.ts';
import type { Identity } from './identity.ts';
import { createHttpBlobSource, type BlobSource } from './fetch/blob-source.ts';

/** The Authorization header value for one request, signed over the SHA-256 of its body (none by default). */
export function agentAuthorization(name: string, key: KeyObject, method: string, path: string, now = Date.now(), bodySha256?: string): string {
  const signature = sign(null, Buffer.from(agentSigningInput(name, now, method, path, bodySha256)), key).toString('base64url');
  return `StrataAgent ${name}.${now}.${signature}`;
}

/** Most server URLs one `--server` list may name. */
const MAX_SERVERS = 32;

/** Splits a comma-separated `--server` list into URLs (at least one). */
export function serverList(text: string): string[] {
  const servers = text.split(',').map((s) => s.trim()).filter((s) => s !== '');
  if (servers.length === 0) throw new StrataError('BAD_REQUEST', 'no server URL given');
  if (servers.length > MAX_SERVERS) throw new StrataError('BAD_REQUEST', `at most ${MAX_SERVERS} server URLs may be given, got ${servers.length}`);
  return servers;
}

/** Signed requests to the server on behalf of one agent. */
export class ServerApi {
  readonly identity: Identity;
  /** Every server replica the agent may use, in the order it tries them. */
  readonly servers: string[];
  private readonly key: KeyObject;
  private index = 0;
  private client: HttpClient;
  /** The timestamp of the last signature, in ms. */
  private lastSignedAt = 0;

  constructor(identity: Identity, server = identity.server) {
    this.identity = identity;
    this.servers = serverList(server);
    this.key = createPrivateKey(identity.privateKey);
    this.client = this.open(this.servers[0]!);
  }

  /** The server replica currently in use. */
  get server(): string {
    return this.servers[this.index]!;
  }

  /**
   * Moves on from `failed` to the next server replica (when there are several and `failed` is
   * still the one in use: the channel and the poll may both notice one outage); returns the one
   * now in use.
   */
  failover(failed: string): string {
    if (this.servers.length < 2 || failed !== this.server) return this.server;
    this.client.close();
    this.index = (this.index + 1) % this.servers.length;
    this.client = this.open(this.server);
    return this.server;
  }

  /** Runs `call`; when the replica in use cannot be reached, the next call goes to the next one. */
  async failingOver<T>(call: () => Promise<T>): Promise<T> {
    const tried = this.server;
    try {
      return await call();
    } catch (error) {
      if (isUnreachable(error)) this.failover(tried);
      throw error;
    }
  }

  private open(server: string): HttpClient {
    return createHttpClient({ baseUrl: server, caPem: this.identity.caPem, userAgent: `strata-agent/${STRATA_VERSION}` });
  }

  /**
   * The signed Authorization header for a request, over the SHA-256 of its body (none by default).
   * Timestamps strictly increase: Ed25519 signatures are deterministic, so two identical requests
   * signed within one millisecond would carry one signature, and the server takes the second for
   * a replay.
   */
  authorization(method: string, path: string, bodySha256?: string): string {
    this.lastSignedAt = Math.max(Date.now(), this.lastSignedAt + 1);
    return agentAuthorization(this.identity.name, this.key, method, path, this.lastSignedAt, bodySha256);
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

  /** Sends a status report, its exact bytes covered by the signature. */
  async report(report: StatusReport): Promise<void> {
    const path = '/v1/agent/status';
    const body = Buffer.from(JSON.stringify(report));
    const bodySha256 = createHash('sha256').update(body).digest('hex');
    const headers = {
      authorization: this.authorization('POST', path, bodySha256),
      [AGENT_BODY_HASH_HEADER]: bodySha256,
      'content-type': 'application/json',
    };
    const response = await this.client.request({ method: 'POST', path, body: Readable.from([body]), contentLength: body.length, headers });
    if (response.status >= 400) return this.failure(response);
    response.body.resume();
  }

  /** Where the blob cache downloads from: this server, each request signed. */
  blobSource(): BlobSource {
    // Through the client in use at each request, so downloads follow a failover.
    const current: HttpClient = { request: (options) => this.client.request(options), close: () => {} };
    return createHttpBlobSource(current, (path) => ({ authorization: this.authorization('GET', path) }));
  }

  /** Closes kept-alive connections. */
  close(): void {
    this.client.close();
  }
}
