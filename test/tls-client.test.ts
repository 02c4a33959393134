/**
 * The HTTP client against a real HTTPS server using the server's own CA: pinning, CA files,
 * hostname checks, errors fit for users, streamed uploads and token hygiene.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm } from 'node:fs/promises';
import http from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import { type HttpClientOptions, type HttpClient, createHttpClient, isClientError } from '../src/lib/http-client.ts';
import { type ServerTls, ensureServerTls } from '../src/server/tls.ts';
import { certificateFingerprint } from '../src/lib/fingerprint.ts';

const TOKEN = 'tok-3f9a1c55e2d0b7';
const UPLOAD_BYTES = 50 * 1024 * 1024;

let dataDir: string;
let tls: ServerTls;
let server: https.Server;
let baseUrl: string;
let port: number;
let seenAuthorization: string | undefined;
let connections = 0;
let produced = 0;
let producedWhilePaused: number | undefined;
const clients: HttpClient[] = [];

/** A client that is closed after the suite. */
function client(options: Partial<HttpClientOptions> = {}): HttpClient {
  const created = createHttpClient({ baseUrl, ...options });
  clients.push(created);
  return created;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  seenAuthorization = req.headers.authorization;
  const url = new URL(req.url ?? '/', 'https://strata.test');
  if (url.pathname === '/upload') {
    const hash = createHash('sha256');
    let bytes = 0;
    for await (const chunk of req as AsyncIterable<Buffer>) {
      hash.update(chunk);
      bytes += chunk.length;
    }
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ sha256: hash.digest('hex'), bytes, length: req.headers['content-length'] ?? null }));
  } else if (url.pathname === '/echo') {
    let body = '';
    for await (const chunk of req as AsyncIterable<Buffer>) body += chunk.toString('utf8');
    res.setHeader('content-type', 'application/json');
    const query = Object.fromEntries(url.searchParams);
    res.end(JSON.stringify({ method: req.method, contentType: req.headers['content-type'] ?? null, body, query }));
  } else if (url.pathname === '/slow-reader') {
    // Read nothing for a while: a client honouring backpressure stops producing meanwhile.
    await new Promise((resolve) => setTimeout(resolve, 500));
    producedWhilePaused = produced;
    for await (const chunk of req as AsyncIterable<Buffer>) void chunk;
    res.end('{}');
  } else if (url.pathname === '/slow') {
    // Never answers; the client's timeout must fire.
  } else if (url.pathname === '/big') {
    const chunk = Buffer.alloc(1024 * 1024, 'x');
    for (let i = 0; i < 17; i++) if (!res.write(chunk)) await once(res, 'drain');
    res.end();
  } else {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ hello: 'strata' }));
  }
}

before(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'strata-tls-client-'));
  tls = await ensureServerTls(dataDir, []);
  server = https.createServer({ key: tls.key, cert: tls.cert }, (req, res) => {
    handle(req, res).catch((error: unknown) => res.destroy(error as Error));
  });
  server.on('connection', () => connections++);
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  port = (server.address() as AddressInfo).port;
  baseUrl = `https://127.0.0.1:${port}`;
});

after(async () => {
  for (const created of clients) created.close();
  server.closeAllConnections();
  server.close();
  await rm(dataDir, { recursive: true, force: true });
});

/** Asserts that `promise` rejects with a ClientError of `code` whose message matches and hides the token. */
async function rejectsWith(promise: Promise<unknown>, code: string, message: RegExp): Promise<Error> {
  let caught: unknown;
  await assert.rejects(promise, (error: unknown) => ((caught = error), true));
  assert.ok(isClientError(caught), `expected a ClientError, got ${String(caught)}`);
  assert.equal(caught.code, code, caught.message);
  assert.match(caught.message, message);
  assert.ok(!String(caught.stack).includes(TOKEN) && !String((caught.cause as Error | undefined)?.message).includes(TOKEN), 'token leaked');
  return caught;
}

describe('trust', () => {
  it('trusts the CA pinned by its canonical fingerprint, over one kept-alive connection', async () => {
    const pinned = client({ fingerprint: tls.fingerprint });
    const before = connections;
    for (let i = 0; i < 3; i++) {
      const response = await pinned.request({ method: 'GET', path: '/hello' });
      assert.equal(response.status, 200);
      assert.deepEqual(await response.json(), { hello: 'strata' });
    }
    assert.equal(connections - before, 2, 'one probe connection, then one reused connection');
  });

  it('accepts the pin with colons, upper case and a prefix', async () => {
    const written = 'SHA256:' + tls.fingerprint.toUpperCase().match(/../g)!.join(':');
    const response = await client({ fingerprint: written }).request({ method: 'GET', path: '/' });
    assert.equal(response.status, 200);
    await response.text();
  });

  it('accepts a pin on the server certificate itself', async () => {
    const leaf = tls.cert.slice(0, tls.cert.indexOf('-----END CERTIFICATE-----') + 25);
    const response = await client({ fingerprint: certificateFingerprint(leaf) }).request({ method: 'GET', path: '/' });
    assert.equal(response.status, 200);
    await response.text();
  });

  it('trusts a CA given as PEM', async () => {
    const response = await client({ caPem: tls.caCert }).request({ method: 'GET', path: '/' });
    assert.deepEqual(await response.json(), { hello: 'strata' });
  });

  it('refuses a server whose chain does not contain the pinned certificate', async () => {
    const wrong = 'ab'.repeat(32);
    const error = await rejectsWith(
      client({ fingerprint: wrong, token: TOKEN }).request({ method: 'GET', path: '/' }),
      'FINGERPRINT_MISMATCH',
      /fingerprint mismatch/,
    );
    assert.equal(error.message, `server certificate fingerprint mismatch: expected ${wrong}, server presents ${tls.fingerprint}`);
  });

  it('refuses the server with only the system trust store', async () => {
    await rejectsWith(client({ token: TOKEN }).request({ method: 'GET', path: '/' }), 'TLS', /TLS connection to https:\/\/127\.0\.0\.1:\d+ failed: .*pin the server's CA fingerprint/);
  });

  it('checks the host name against the certificate, with a CA file or a pin', async (t) => {
    // 127.0.0.2 reaches the same machine but is not in the certificate.
    const other = https.createServer({ key: tls.key, cert: tls.cert }, (_req, res) => res.end('{}'));
    try {
      other.listen(0, '127.0.0.2');
      await once(other, 'listening');
    } catch (error) {
      t.skip(`cannot listen on 127.0.0.2: ${(error as Error).message}`);
      return;
    }
    const otherUrl = `https://127.0.0.2:${(other.address() as AddressInfo).port}`;
    try {
      for (const trust of [{ caPem: tls.caCert }, { fingerprint: tls.fingerprint }]) {
        await rejectsWith(client({ baseUrl: otherUrl, token: TOKEN, ...trust }).request({ method: 'GET', path: '/' }), 'TLS', /127\.0\.0\.2.*connect by a name or address the server certificate covers/);
      }
    } finally {
      other.closeAllConnections();
      other.close();
    }
  });
});

describe('errors', () => {
  it('reports a closed port as unreachable', async () => {
    const probe = http.createServer().listen(0, '127.0.0.1');
    await once(probe, 'listening');
    const closedPort = (probe.address() as AddressInfo).port;
    await new Promise((resolve) => probe.close(resolve));
    const url = `https://127.0.0.1:${closedPort}`;
    for (const trust of [{}, { fingerprint: tls.fingerprint }]) {
      const error = await rejectsWith(
        client({ baseUrl: url, token: TOKEN, ...trust }).request({ method: 'GET', path: '/' }),
        'UNREACHABLE',
        /cannot reach/,
      );
      assert.equal(error.message, `cannot reach the server at ${url}: ECONNREFUSED`);
    }
  });

  it('times out when the server does not answer', async () => {
    const impatient = client({ fingerprint: tls.fingerprint, token: TOKEN, timeoutMs: 300 });
    await rejectsWith(impatient.request({ method: 'GET', path: '/slow' }), 'TIMEOUT', /no response from the server at .* within 0\.3 s/);
  });

  it('rejects URLs it cannot use', () => {
    for (const [options, message] of [
      [{ baseUrl: 'not a url' }, /invalid server URL "not a url"/],
      [{ baseUrl: 'ftp://example.com' }, /only https:\/\/ and http:\/\//],
      [{ baseUrl: 'http://example.com', fingerprint: tls.fingerprint }, /plain http/],
    ] as const) {
      assert.throws(() => createHttpClient(options), (error: unknown) => isClientError(error, 'BAD_URL') && message.test(error.message));
    }
    assert.throws(() => createHttpClient({ baseUrl, fingerprint: 'abc' }), /invalid certificate fingerprint "abc"/);
  });

  it('refuses to buffer more than 16 MiB', async () => {
    const response = await client({ caPem: tls.caCert }).request({ method: 'GET', path: '/big' });
    await assert.rejects(response.text(), /response to GET \/big is larger than 16 MiB; read it as a stream/);
  });
});

describe('requests', () => {
  it('sends the token as a bearer token', async () => {
    const response = await client({ fingerprint: tls.fingerprint, token: TOKEN }).request({ method: 'GET', path: '/' });
    await response.text();
    assert.equal(seenAuthorization, `Bearer ${TOKEN}`);
  });

  it('speaks plain HTTP to an http:// URL', async () => {
    const plain = http.createServer((req, res) => res.end(JSON.stringify({ authorization: req.headers.authorization })));
    plain.listen(0, '127.0.0.1');
    await once(plain, 'listening');
    try {
      const url = `http://127.0.0.1:${(plain.address() as AddressInfo).port}`;
      const response = await client({ baseUrl: url, token: TOKEN }).request({ method: 'GET', path: '/' });
      assert.deepEqual(await response.json(), { authorization: `Bearer ${TOKEN}` });
    } finally {
      plain.closeAllConnections();
      plain.close();
    }
  });

  it('sends JSON and query parameters', async () => {
    const response = await client({ caPem: tls.caCert }).request({
      method: 'POST',
      path: '/echo',
      query: { name: 'web one', limit: 5, all: true, skipped: undefined },
      json: { layers: ['base:1.0'] },
    });
    assert.deepEqual(await response.json(), {
      method: 'POST',
      contentType: 'application/json',
      body: '{"layers":["base:1.0"]}',
      query: { name: 'web one', limit: '5', all: 'true' },
    });
  });

  it('streams a 50 MB upload intact', async () => {
    let sent = createHash('sha256');
    async function* generate(): AsyncGenerator<Buffer> {
      for (let offset = 0; offset < UPLOAD_BYTES; offset += 1024 * 1024) {
        const chunk = randomBytes(Math.min(1024 * 1024, UPLOAD_BYTES - offset));
        sent.update(chunk);
        yield chunk;
      }
    }
    const uploader = client({ fingerprint: tls.fingerprint, token: TOKEN });
    for (const contentLength of [UPLOAD_BYTES, undefined]) {
      const response = await uploader.request({ method: 'PUT', path: '/upload', body: Readable.from(generate()), contentLength });
      const received = await response.json<{ sha256: string; bytes: number; length: string | null }>();
      assert.equal(received.bytes, UPLOAD_BYTES);
      assert.equal(received.sha256, sent.digest('hex'));
      assert.equal(received.length, contentLength === undefined ? null : String(UPLOAD_BYTES), 'chunked without a length');
      sent = createHash('sha256');
    }
  });

  it('stops reading the body while the server is not reading', async () => {
    const total = 64 * 1024 * 1024;
    async function* generate(): AsyncGenerator<Buffer> {
      const chunk = Buffer.alloc(64 * 1024);
      for (produced = 0; produced < total; produced += chunk.length) yield chunk;
    }
    const response = await client({ caPem: tls.caCert }).request({ method: 'PUT', path: '/slow-reader', body: Readable.from(generate()) });
    await response.text();
    assert.ok(producedWhilePaused !== undefined && producedWhilePaused < 24 * 1024 * 1024, `produced ${producedWhilePaused} bytes while the server read none`);
  });
});
