/**
 * The one HTTP(S) client of the CLI and the agent. Built on node:http(s) rather than fetch because
 * uploads are streams of many GB that need backpressure, and because trust is Strata's own: a
 * server's CA is pinned by fingerprint, given as a file, or taken from the system store.
 */
import type { Agent, IncomingHttpHeaders, IncomingMessage } from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { type Readable, pipeline } from 'node:stream';
import { X509Certificate } from 'node:crypto';
import tls, { type DetailedPeerCertificate } from 'node:tls';
import { certificateFingerprint, parseFingerprint } from './fingerprint.ts';
import { http } from './node-http.ts';

/** How to reach one Strata server and whom to trust there. */
export interface HttpClientOptions {
  /** `https://host:port` or `http://host:port`, optionally with a path prefix. */
  baseUrl: string;
  /** Sent as `Authorization: Bearer <token>`; never included in errors. */
  token?: string;
  /** Pin: trust the CA (or certificate) in the server's chain with this SHA-256 fingerprint. */
  fingerprint?: string;
  /** Trust exactly this CA, PEM. */
  caPem?: string;
  /** Longest silence while connecting, sending and waiting for response headers; default 30 s. */
  timeoutMs?: number;
  /** User-Agent header. */
  userAgent?: string;
}

/** A response whose body is still a stream; read it, or it holds its connection. */
export interface HttpResponse {
  status: number;
  headers: IncomingHttpHeaders;
  body: Readable;
  /** Buffers the body (at most 16 MiB) and parses it as JSON. */
  json<T = unknown>(): Promise<T>;
  /** Buffers the body (at most 16 MiB) as UTF-8 text. */
  text(): Promise<string>;
}

/** One request; `json` and `body` are mutually exclusive. */
export interface RequestOptions {
  method: string;
  /** Path below the base URL, starting with `/`. */
  path: string;
  /** Query parameters; undefined values are left out. */
  query?: Record<string, string | number | boolean | undefined>;
  /** Serialised as the body with content-type application/json. */
  json?: unknown;
  /** Streamed as the body with backpressure. */
  body?: Readable;
  /** Length of `body`, when known; otherwise it is sent chunked. */
  contentLength?: number;
  headers?: Record<string, string>;
  signal?: AbortSignal;
}

/** A client bound to one server; `close()` ends its keep-alive connections. */
export interface HttpClient {
  request(options: RequestOptions): Promise<HttpResponse>;
  close(): void;
}

/** Why a request never got a response. */
export type ClientErrorCode = 'FINGERPRINT_MISMATCH' | 'UNREACHABLE' | 'TLS' | 'TIMEOUT' | 'BAD_URL';

/** A request failed before the server answered; the message is fit for a user. */
export class ClientError extends Error {
  override readonly name = 'ClientError';
  readonly code: ClientErrorCode;

  constructor(code: ClientErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
  }
}

/** True when `error` is a ClientError, optionally with the given code. */
export function isClientError(error: unknown, code?: ClientErrorCode): error is ClientError {
  return error instanceof ClientError && (code === undefined || error.code === code);
}

/** True for what another attempt or another replica may cure: the server was not reached, or did not answer in time. */
export function isUnreachable(error: unknown): error is ClientError {
  return isClientError(error, 'UNREACHABLE') || isClientError(error, 'TIMEOUT');
}

const DEFAULT_TIMEOUT_MS = 30_000;
const MAX_BUFFERED_BYTES = 16 * 1024 * 1024;
const UNREACHABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ECONNABORTED', 'EPIPE', 'ETIMEDOUT', 'EHOSTUNREACH', 'EHOSTDOWN',
  'ENETUNREACH', 'ENETDOWN', 'EADDRNOTAVAIL', 'ENOTFOUND', 'EAI_AGAIN', 'EAI_FAIL', 'EAI_NODATA',
]);
// OpenSSL verification results and Node's own TLS errors; anything else is not about trust.
const TLS_CODE = /^(ERR_TLS_|ERR_SSL_|CERT_|UNABLE_TO_|SELF_SIGNED_|DEPTH_ZERO_|HOSTNAME_MISMATCH|INVALID_CA|PATH_LENGTH)/;

/** Creates a client for one server; throws ClientError BAD_URL when the URL or the trust options cannot work. */
export function createHttpClient(options: HttpClientOptions): HttpClient {
  const base = parseBaseUrl(options.baseUrl);
  const shown = `${base.protocol}//${base.host}${base.pathname.replace(/\/+$/, '')}`;
  const secure = base.protocol === 'https:';
  const pin = options.fingerprint === undefined ? undefined : parseFingerprint(options.fingerprint);
  if (!secure && (pin !== undefined || options.caPem !== undefined)) {
    // Silently dropping the trust the user asked for would be worse than refusing.
    throw new ClientError('BAD_URL', `${shown} is plain http: a fingerprint or CA certificate needs an https:// URL`);
  }
  const systemTrust = pin === undefined && options.caPem === undefined;
  const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
  const userAgent = options.userAgent ?? 'strata';
  let agent: Promise<Agent> | undefined;
  let closed = false;

  async function createAgent(): Promise<Agent> {
    if (!secure) return new http.Agent({ keepAlive: true });
    if (options.caPem !== undefined) return new https.Agent({ keepAlive: true, ca: options.caPem });
    if (pin === undefined) return new https.Agent({ keepAlive: true });
    const trusted = await findPinnedCertificate(base, shown, pin, timeoutMs);
    // A pinned intermediate or leaf is trusted as it is, not through an issuer the client lacks.
    return new https.Agent({ keepAlive: true, ca: trusted.toString(), allowPartialTrustChain: trusted.subject !== trusted.issuer });
  }

  function getAgent(): Promise<Agent> {
    if (agent === undefined) {
      agent = createAgent();
      // A failed probe is retried by the next request: the server may be up by then.
      agent.catch(() => (agent = undefined));
    }
    return agent;
  }

  async function request(request: RequestOptions): Promise<HttpResponse> {
    if (closed) throw new Error('HTTP client is closed');
    if (request.json !== undefined && request.body !== undefined) throw new TypeError('request takes json or body, not both');
    const url = new URL(base.pathname.replace(/\/+$/, '') + (request.path.startsWith('/') ? '' : '/') + request.path, base.origin);
    for (const [name, value] of Object.entries(request.query ?? {})) {
      if (value !== undefined) url.searchParams.append(name, String(value));
    }
    const headers: Record<string, string> = { 'user-agent': userAgent, ...request.headers };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const payload = request.json === undefined ? undefined : Buffer.from(JSON.stringify(request.json));
    if (payload !== undefined) {
      headers['content-type'] = 'application/json';
      headers['content-length'] = String(payload.length);
    } else if (request.contentLength !== undefined) {
      headers['content-length'] = String(request.contentLength);
    }
    const requestAgent = await getAgent();
    const transport = secure ? https : http;
    return new Promise<HttpResponse>((resolve, reject) => {
      let settled = false;
      let bodyError: unknown;
      const fail = (error: unknown): void => {
        if (!settled) reject(error === bodyError ? error : toClientError(error, shown, systemTrust));
        settled = true;
      };
      const req = transport.request(url, { method: request.method, headers, agent: requestAgent, signal: request.signal });
      // Idle rather than total: a many-GB upload is fine as long as bytes keep moving.
      const onTimeout = (): void => {
        req.destroy(new ClientError('TIMEOUT', `no response from the server at ${shown} within ${timeoutMs / 1000} s`));
      };
      req.setTimeout(timeoutMs, onTimeout);
      req.on('error', fail);
      req.on('response', (res: IncomingMessage) => {
        // From here the body may legitimately be silent for long (streams, watches).
        req.off('timeout', onTimeout);
        req.setTimeout(0);
        if (settled) res.resume();
        else resolve(toResponse(res, `${request.method} ${request.path}`));
        settled = true;
      });
      if (request.body !== undefined) {
        request.body.once('error', (error) => (bodyError = error));
        // Errors reach `fail` through req's 'error'; one after the response (the server answered
        // early and closed) does not concern the caller, who already has the response.
        pipeline(request.body, req, () => {});
      } else {
        req.end(payload);
      }
    });
  }

  return {
    request,
    close(): void {
      closed = true;
      agent?.then((created) => created.destroy(), () => {});
    },
  };
}

/**
 * The PEM of the certificate in the server's chain whose fingerprint is `fingerprint`: what a
 * client that was given only a pin (an agent with a join token, say) keeps as its trust anchor.
 */
export async function fetchPinnedCertificate(baseUrl: string, fingerprint: string, timeoutMs = DEFAULT_TIMEOUT_MS): Promise<string> {
  const base = parseBaseUrl(baseUrl);
  if (base.protocol !== 'https:') throw new ClientError('BAD_URL', `${base.origin} is plain http: pinning needs an https:// URL`);
  const certificate = await findPinnedCertificate(base, base.origin, parseFingerprint(fingerprint), timeoutMs);
  return certificate.toString();
}

/** Parses the base URL, accepting only http and https. */
function parseBaseUrl(text: string): URL {
  const url = URL.parse(text);
  if (url === null) throw new ClientError('BAD_URL', `invalid server URL "${text}": expected https://host:port`);
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw new ClientError('BAD_URL', `invalid server URL "${url.protocol}//${url.host}": only https:// and http:// are supported`);
  }
  return url;
}

/**
 * Opens one unverified TLS connection to read the server's chain and returns the certificate in it
 * whose fingerprint is the pin. Nothing is sent on that connection, so trusting it blindly is safe;
 * every later connection is verified against the certificate found here, hostname included.
 */
function findPinnedCertificate(base: URL, shown: string, pin: string, timeoutMs: number): Promise<X509Certificate> {
  const host = base.hostname.replace(/^\[(.*)\]$/, '$1');
  return new Promise((resolve, reject) => {
    const socket = tls.connect({
      host,
      port: Number(base.port || 443),
      // SNI must not carry an IP address.
      servername: isIP(host) === 0 ? host : undefined,
      rejectUnauthorized: false,
    });
    socket.setTimeout(timeoutMs, () => {
      socket.destroy(new ClientError('TIMEOUT', `no TLS handshake from the server at ${shown} within ${timeoutMs / 1000} s`));
    });
    socket.once('error', (error) => reject(toClientError(error, shown, false)));
    // Settles a handshake the server abandoned without an error; a no-op after secureConnect.
    socket.once('close', () => reject(new ClientError('UNREACHABLE', `cannot reach the server at ${shown}: closed during the TLS handshake`)));
    socket.once('secureConnect', () => {
      const chain = peerChain(socket.getPeerCertificate(true));
      socket.destroy();
      const match = chain.find((cert) => certificateFingerprint(cert.raw) === pin);
      if (match !== undefined) return resolve(new X509Certificate(match.raw));
      const top = chain.at(-1);
      const presented = top === undefined ? 'no certificate' : certificateFingerprint(top.raw);
      reject(new ClientError('FINGERPRINT_MISMATCH', `server certificate fingerprint mismatch: expected ${pin}, server presents ${presented}`));
    });
  });
}

/** The peer's chain from leaf to the top-most certificate it sent. */
function peerChain(leaf: DetailedPeerCertificate): DetailedPeerCertificate[] {
  const chain: DetailedPeerCertificate[] = [];
  // A self-signed root names itself as its issuer, so stop at the first repeat.
  for (let cert: DetailedPeerCertificate | undefined = leaf; cert?.raw !== undefined; cert = cert.issuerCertificate) {
    if (chain.some((seen) => seen.raw.equals(cert!.raw))) break;
    chain.push(cert);
  }
  return chain;
}

/** Maps a low-level error to a ClientError fit for a user; unknown errors pass through unchanged. */
function toClientError(error: unknown, shown: string, systemTrust: boolean): unknown {
  if (error instanceof ClientError) return error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  if (code === undefined) return error;
  if (UNREACHABLE_CODES.has(code)) return new ClientError('UNREACHABLE', `cannot reach the server at ${shown}: ${code}`, { cause: error });
  if (TLS_CODE.test(code)) {
    return new ClientError('TLS', `TLS connection to ${shown} failed: ${(error as Error).message}${tlsHint(code, systemTrust)}`, { cause: error });
  }
  return error;
}

/** What the user can do about a failed TLS connection, when there is something. */
function tlsHint(code: string, systemTrust: boolean): string {
  if (code === 'ERR_TLS_CERT_ALTNAME_INVALID') return '; connect by a name or address the server certificate covers';
  // With a pin or a CA file the user already chose whom to trust; the server is the one to fix.
  if (systemTrust && !code.startsWith('ERR_SSL_')) return "; pin the server's CA fingerprint or give its CA certificate";
  return '';
}

/** Wraps a response so its body can be streamed or buffered once. */
function toResponse(res: IncomingMessage, what: string): HttpResponse {
  let buffered: Promise<string> | undefined;
  const text = (): Promise<string> => (buffered ??= readCapped(res, what));
  return {
    status: res.statusCode ?? 0,
    headers: res.headers,
    body: res,
    text,
    async json<T>(): Promise<T> {
      const body = await text();
      try {
        return JSON.parse(body) as T;
      } catch (error) {
        throw new Error(`invalid JSON in the response to ${what} (HTTP ${res.statusCode})`, { cause: error });
      }
    },
  };
}

/** Reads a body of at most MAX_BUFFERED_BYTES as UTF-8. */
async function readCapped(res: IncomingMessage, what: string): Promise<string> {
  const tooLarge = (): Error => {
    res.destroy();
    return new Error(`response to ${what} is larger than ${MAX_BUFFERED_BYTES / 1024 / 1024} MiB; read it as a stream`);
  };
  if (Number(res.headers['content-length'] ?? 0) > MAX_BUFFERED_BYTES) throw tooLarge();
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BUFFERED_BYTES) throw tooLarge();
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
