/** The HTTP API through inject(): auth and roles, validation, uploads, the configuration verbs, audit. */
import { describe, it } from 'node:test';
import { StrataError } from '../src/core/errors.ts';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { text } from 'node:stream/consumers';
import { gunzipSync, gzipSync } from 'node:zlib';
import * as tar from 'tar';
import { testApp, type TestApp } from './helpers/app.ts';
import { tempDir } from './helpers/temp-dir.ts';

type T = { after: (fn: () => Promise<void>) => void };

/** A small tar.gz with the given files. */
async function tarGz(t: T, files: Record<string, string>): Promise<Buffer> {
  const dir = await tempDir(t);
  for (const [name, content] of Object.entries(files)) {
    await mkdir(path.dirname(path.join(dir, name)), { recursive: true });
    await writeFile(path.join(dir, name), content);
  }
  const chunks: Buffer[] = [];
  for await (const chunk of tar.create({ gzip: true, cwd: dir, portable: true }, Object.keys(files).sort())) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

async function upload(env: TestApp, body: Buffer, role: 'admin' | 'deployer' | 'viewer' = 'deployer', query = '') {
  return env.app.inject({ method: 'POST', url: `/v1/blobs${query}`, headers: { ...env.auth[role], 'content-type': 'application/octet-stream' }, payload: body });
}

async function addVersion(t: T, env: TestApp, component: string, version: string, files: Record<string, string>): Promise<string> {
  const response = await upload(env, await tarGz(t, files));
  assert.equal(response.statusCode, 201, response.body);
  const sha = response.json().sha256 as string;
  const added = await env.app.inject({ method: 'POST', url: `/v1/components/${component}/versions`, headers: env.auth.deployer, payload: { version, blob: sha } });
  assert.equal(added.statusCode, 201, added.body);
  return sha;
}

describe('authentication and roles', () => {
  it('refuses a missing, malformed or unknown token with UNAUTHENTICATED', async (t) => {
    const env = await testApp(t);
    for (const headers of [{}, { authorization: 'Bearer nope' }, { authorization: `Bearer strata_${'0'.repeat(12)}_${'x'.repeat(32)}` }]) {
      const response = await env.app.inject({ method: 'GET', url: '/v1/components', headers });
      assert.equal(response.statusCode, 401);
      assert.equal(response.json().code, 'UNAUTHENTICATED');
    }
  });

  it('lets a viewer read but not write, and a deployer write but not manage tokens', async (t) => {
    const env = await testApp(t);
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/configurations', headers: env.auth.viewer })).statusCode, 200);
    const put = await env.app.inject({ method: 'PUT', url: '/v1/configurations/x', headers: env.auth.viewer, payload: { layers: [{ component: 'a', version: 'b' }] } });
    assert.equal(put.statusCode, 403);
    assert.equal(put.json().code, 'FORBIDDEN');
    const tokens = await env.app.inject({ method: 'POST', url: '/v1/tokens', headers: env.auth.deployer, payload: { role: 'admin', name: 'x' } });
    assert.equal(tokens.statusCode, 403);
    assert.equal((await upload(env, await tarGz(t, { a: 'a' }), 'viewer')).statusCode, 403);
  });

  it('creates a token shown once, lists it without the secret, and refuses it once revoked', async (t) => {
    const env = await testApp(t);
    const created = await env.app.inject({ method: 'POST', url: '/v1/tokens', headers: env.auth.admin, payload: { role: 'viewer', name: 'dash' } });
    assert.equal(created.statusCode, 201);
    const { token, id } = created.json() as { token: string; id: string };
    assert.match(token, /^strata_[0-9a-f]{12}_/);
    const list = await env.app.inject({ method: 'GET', url: '/v1/tokens', headers: env.auth.admin });
    // The secret is everything after `strata_<12 hex id>_`; base64url may itself contain `_`.
    assert.ok(!list.body.includes(token.slice('strata_'.length + 13)), 'the secret is never listed');
    assert.ok(!list.body.includes('secretHash'));
    const who = await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${token}` } });
    assert.equal(who.json().role, 'viewer');
    assert.equal((await env.app.inject({ method: 'DELETE', url: `/v1/tokens/${id}`, headers: env.auth.admin })).statusCode, 200);
    const refused = await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: `Bearer ${token}` } });
    assert.equal(refused.statusCode, 401);
    assert.match(refused.json().message, /revoked/);
  });

  it('slows down repeated failures for one identity from one address, without locking out the others', async (t) => {
    const env = await testApp(t);
    const adminId = env.tokenIds.admin;
    const wrongSecret = { authorization: `Bearer strata_${adminId}_${'x'.repeat(32)}` };
    for (let i = 0; i < 5; i++) {
      assert.equal((await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: wrongSecret })).statusCode, 401);
    }
    const blocked = await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: env.auth.admin });
    assert.equal(blocked.statusCode, 429, 'the guessed token is refused even with its right secret for a while');
    assert.equal(blocked.json().code, 'TOO_MANY_AUTH_FAILURES');
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: env.auth.viewer })).statusCode, 200, 'other identities behind the same address still work');
    for (let i = 0; i < 5; i++) await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: 'Bearer nope' } });
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: { authorization: 'Bearer nope' } })).statusCode, 429, 'malformed tokens share one counter per address');
  });

  it('refuses an address that invents a new identity for every attempt, and audits only the first failed writes', async (t) => {
    const env = await testApp(t);
    const statuses: number[] = [];
    for (let i = 0; i < 110; i++) {
      const id = i.toString(16).padStart(12, '0');
      const response = await env.app.inject({ method: 'POST', url: '/v1/tokens', headers: { authorization: `Bearer strata_${id}_${'x'.repeat(32)}` }, payload: { role: 'viewer', name: 'x' } });
      statuses.push(response.statusCode);
    }
    assert.deepEqual(statuses.slice(0, 100), Array(100).fill(401), 'a new identity each time: refused, not throttled, up to the address budget');
    assert.deepEqual(statuses.slice(100), Array(10).fill(429), 'then the address itself is refused');
    const audited = (await env.store.listAudit({ limit: 1000 })).filter((entry) => entry.action === 'auth.failed');
    assert.equal(audited.length, 20, 'only the first failed writes of the window are audited');
  });

  it('counts an IPv6 caller by its /64, so rotating addresses within it does not escape the throttle', async (t) => {
    const env = await testApp(t);
    const wrong = { authorization: `Bearer strata_${env.tokenIds.admin}_${'x'.repeat(32)}` };
    for (let i = 1; i <= 5; i++) {
      const response = await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: wrong, remoteAddress: `2001:db8:0:7::${i.toString(16)}` });
      assert.equal(response.statusCode, 401);
    }
    const sameNetwork = await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: wrong, remoteAddress: '2001:db8:0:7:ffff::1' });
    assert.equal(sameNetwork.statusCode, 429);
    const otherNetwork = await env.app.inject({ method: 'GET', url: '/v1/whoami', headers: env.auth.admin, remoteAddress: '2001:db8:0:8::1' });
    assert.equal(otherNetwork.statusCode, 200);
    const { addressKey } = await import('../src/server/auth.ts');
    assert.deepEqual(['127.0.0.1', '::ffff:10.1.2.3', '2001:db8:85a3::8a2e:370:7334', '2001:0db8:0000:0001::', '::1'].map(addressKey), ['127.0.0.1', '10.1.2.3', '2001:db8:85a3:0::/64', '2001:db8:0:1::/64', '0:0:0:0::/64']);
  });

  it('serves health and the OpenAPI document without a token', async (t) => {
    const env = await testApp(t);
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/health' })).json().ok, true);
    const doc = (await env.app.inject({ method: 'GET', url: '/v1/openapi.json' })).json() as { openapi: string; paths: Record<string, unknown> };
    assert.match(doc.openapi, /^3\./);
    for (const route of ['/v1/blobs', '/v1/components/{name}/versions', '/v1/configurations/{name}', '/v1/configurations/{name}/rollback', '/v1/tokens', '/v1/audit']) {
      assert.ok(doc.paths[route], `OpenAPI documents ${route}`);
    }
  });

  it('answers unknown routes with NOT_FOUND in the error shape', async (t) => {
    const env = await testApp(t);
    const response = await env.app.inject({ method: 'GET', url: '/v1/nope', headers: env.auth.admin });
    assert.equal(response.statusCode, 404);
    assert.equal(response.json().code, 'NOT_FOUND');
  });
});

describe('uploads', () => {
  it('stores a tar.gz, reports its inspection, and serves it back whole and by range', async (t) => {
    const env = await testApp(t);
    const body = await tarGz(t, { 'index.html': 'hello', 'etc/app.conf': 'x=1' });
    const response = await upload(env, body);
    assert.equal(response.statusCode, 201, response.body);
    const result = response.json();
    assert.equal(result.sha256, createHash('sha256').update(body).digest('hex'));
    assert.equal(result.archive.format, 'tar.gz');
    assert.ok(result.archive.entries >= 2);
    const whole = await env.app.inject({ method: 'GET', url: `/v1/blobs/${result.sha256}`, headers: env.auth.viewer });
    assert.deepEqual(whole.rawPayload, body);
    const part = await env.app.inject({ method: 'GET', url: `/v1/blobs/${result.sha256}`, headers: { ...env.auth.viewer, range: 'bytes=10-19' } });
    assert.equal(part.statusCode, 206);
    assert.deepEqual(part.rawPayload, body.subarray(10, 20));
    assert.equal(part.headers['content-range'], `bytes 10-19/${body.length}`);

    // Refusals of a download are JSON, though the route had already set the blob's content type.
    const beyond = await env.app.inject({ method: 'GET', url: `/v1/blobs/${result.sha256}`, headers: { ...env.auth.viewer, range: `bytes=${body.length + 10}-` } });
    assert.equal(beyond.statusCode, 416);
    assert.match(String(beyond.headers['content-type']), /^application\/json/);
    assert.equal(beyond.json().code, 'BAD_REQUEST');
    const getBlob = env.store.getBlob.bind(env.store);
    env.store.getBlob = async () => {
      throw new StrataError('STORE_UNAVAILABLE', 'the NATS store is briefly unreachable: timeout');
    };
    const unavailable = await env.app.inject({ method: 'GET', url: `/v1/blobs/${result.sha256}`, headers: env.auth.viewer });
    env.store.getBlob = getBlob;
    assert.equal(unavailable.statusCode, 503);
    assert.match(String(unavailable.headers['content-type']), /^application\/json/);
    assert.equal(unavailable.json().code, 'STORE_UNAVAILABLE');
  });

  it('refuses bytes that are not an archive and keeps nothing', async (t) => {
    const env = await testApp(t);
    const response = await upload(env, Buffer.from('this is not an archive at all'.repeat(40)));
    assert.equal(response.statusCode, 422);
    assert.equal(response.json().code, 'INVALID_ARCHIVE');
    const sha = createHash('sha256').update('this is not an archive at all'.repeat(40)).digest('hex');
    assert.equal(await env.store.statBlob(sha), undefined);
  });

  it('refuses a truncated tar.gz', async (t) => {
    const env = await testApp(t);
    const body = await tarGz(t, { big: 'x'.repeat(100_000) + Math.random() });
    const response = await upload(env, body.subarray(0, Math.floor(body.length / 2)));
    assert.equal(response.statusCode, 422);
    assert.equal(response.json().code, 'INVALID_ARCHIVE');
  });

  it('refuses an archive with an unsafe entry and names it', async (t) => {
    const env = await testApp(t);
    const header = new tar.Header({ path: '../escape.txt', type: 'File', size: 3, mode: 0o644, mtime: new Date(0) });
    const block = Buffer.alloc(512);
    header.encode(block, 0);
    const data = Buffer.alloc(512);
    data.write('bad');
    const archive = Buffer.concat([block, data, Buffer.alloc(1024)]);
    const response = await upload(env, archive);
    assert.equal(response.statusCode, 422);
    assert.equal(response.json().code, 'UNSAFE_ARCHIVE_ENTRY');
    assert.match(response.json().message, /\.\.\/escape\.txt/);
  });

  it('refuses a gzip bomb (a tar.gz, then 2 GiB of zeros) and keeps nothing, but accepts a tar padded to a 1 MiB record', async (t) => {
    const env = await testApp(t, { maxUnpackedBytes: 1024 * 1024 });
    const tarBytes = gunzipSync(await tarGz(t, { 'index.html': 'hello' }));
    const record = 1024 * 1024;
    const padded = gzipSync(Buffer.concat([tarBytes, Buffer.alloc(record - (tarBytes.length % record))]));
    const accepted = await upload(env, padded);
    assert.equal(accepted.statusCode, 201, accepted.body);
    // gunzip reads on through concatenated members: 512 of 4 MiB of zeros, about 4 KiB apiece.
    const zeros = gzipSync(Buffer.alloc(4 * 1024 * 1024), { level: 9 });
    const bomb = Buffer.concat([gzipSync(tarBytes), ...Array<Buffer>(512).fill(zeros)]);
    const response = await upload(env, bomb);
    assert.equal(response.statusCode, 422);
    assert.equal(response.json().code, 'INVALID_ARCHIVE');
    assert.match(response.json().message, /^archive has more than 1048576 bytes after the tar's end-of-archive marker/);
    assert.equal(await env.store.statBlob(createHash('sha256').update(bomb).digest('hex')), undefined);
    assert.deepEqual(await readdir(path.join(env.dir, 'uploads')), [], 'no staged upload is left behind');
    assert.equal((await env.store.statBlob(accepted.json().sha256))?.size, padded.length, 'the accepted blob is intact');
  });

  it('refuses a hash mismatch and an upload over the size limit', async (t) => {
    const env = await testApp(t, { maxUploadBytes: 4096 });
    const body = await tarGz(t, { a: 'a' });
    const mismatch = await upload(env, body, 'deployer', `?sha256=${'0'.repeat(64)}`);
    assert.equal(mismatch.statusCode, 422);
    assert.equal(mismatch.json().code, 'HASH_MISMATCH');
    const big = await upload(env, Buffer.alloc(10_000));
    assert.equal(big.statusCode, 413);
    assert.equal(big.json().code, 'PAYLOAD_TOO_LARGE');
  });

  it('refuses a JSON upload with UNSUPPORTED_MEDIA_TYPE', async (t) => {
    const env = await testApp(t);
    const response = await env.app.inject({ method: 'POST', url: '/v1/blobs', headers: env.auth.deployer, payload: { a: 1 } });
    assert.equal(response.statusCode, 415);
    assert.equal(response.json().code, 'UNSUPPORTED_MEDIA_TYPE');
  });
});

describe('configurations', () => {
  it('runs addconf, changeconf, bumpconf, history and rollback with compare-and-set', async (t) => {
    const env = await testApp(t);
    await addVersion(t, env, 'code', 'v1', { 'app.js': '1' });
    await addVersion(t, env, 'config', 'v1', { 'app.conf': 'a' });
    await addVersion(t, env, 'config', 'v2', { 'app.conf': 'b' });
    const created = await env.app.inject({ method: 'PUT', url: '/v1/configurations/project1', headers: env.auth.deployer, payload: { layers: [{ component: 'code', version: 'v1' }, { component: 'config', version: 'v1' }] } });
    assert.equal(created.statusCode, 200, created.body);
    assert.equal(created.json().revision, 1);

    const again = await env.app.inject({ method: 'PUT', url: '/v1/configurations/project1', headers: env.auth.deployer, payload: { layers: [{ component: 'code', version: 'v1' }] } });
    assert.equal(again.statusCode, 409);
    assert.equal(again.json().code, 'CONFIGURATION_EXISTS');

    const stale = await env.app.inject({ method: 'PUT', url: '/v1/configurations/project1', headers: env.auth.deployer, payload: { layers: [{ component: 'code', version: 'v1' }], expectedRevision: 7 } });
    assert.equal(stale.json().code, 'REVISION_CONFLICT');

    const changed = await env.app.inject({ method: 'PATCH', url: '/v1/configurations/project1/layers/config', headers: env.auth.deployer, payload: { version: 'v2' } });
    assert.equal(changed.json().changed, true);
    assert.equal(changed.json().configuration.revision, 2);
    const bumped = await env.app.inject({ method: 'PATCH', url: '/v1/configurations/project1/layers/config', headers: env.auth.deployer, payload: { latest: true } });
    assert.equal(bumped.json().changed, false, 'already at the newest version');

    const rolled = await env.app.inject({ method: 'POST', url: '/v1/configurations/project1/rollback', headers: env.auth.deployer, payload: {} });
    assert.equal(rolled.json().revision, 3);
    assert.equal(rolled.json().layers[1].version, 'v1');
    assert.equal(rolled.json().id, created.json().id, 'same layers, same id');
    const history = await env.app.inject({ method: 'GET', url: '/v1/configurations/project1/history', headers: env.auth.viewer });
    assert.deepEqual(history.json().revisions.map((r: { revision: number }) => r.revision), [1, 2, 3]);
  });

  it('renders deploy-tools JSON exactly', async (t) => {
    const env = await testApp(t);
    const code = await addVersion(t, env, 'code', 'v1', { 'app.js': '1' });
    const config = await addVersion(t, env, 'config', 'v1', { 'app.conf': 'a' });
    await env.app.inject({ method: 'PUT', url: '/v1/configurations/project1', headers: env.auth.deployer, payload: { layers: [{ component: 'code', version: 'v1' }, { component: 'config', version: 'v1' }] } });
    const response = await env.app.inject({ method: 'GET', url: '/v1/configurations/project1/deploy-tools.json', headers: env.auth.viewer });
    const body = response.body;
    assert.ok(body.endsWith('}\n'));
    assert.match(body, /^\{\n\t"Name": "project1",\n\t"Mtime": "\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z",\n\t"Hash": "[0-9a-f]{64}",\n\t"Layers": \[\n\t\t\{\n\t\t\t"Name": "code",/);
    const doc = JSON.parse(body);
    assert.equal(doc.Hash, createHash('sha256').update(`${code}\n${config}\n`).digest('hex'));
    assert.equal(doc.Layers[0].File, `files/${code}`);
  });

  it('refuses bad names, bad layers, unknown versions and unconfirmed deletes, changing nothing', async (t) => {
    const env = await testApp(t);
    await addVersion(t, env, 'code', 'v1', { 'app.js': '1' });
    const cases: [unknown, string][] = [
      [{ layers: [] }, 'BAD_REQUEST'],
      [{ layers: [{ component: 'code', version: 'v1' }, { component: 'code', version: 'v1' }] }, 'INVALID_LAYERS'],
      [{ layers: [{ component: 'code', version: 'v9' }] }, 'VERSION_NOT_FOUND'],
      [{ layers: [{ component: 'nope', version: 'v1' }] }, 'COMPONENT_NOT_FOUND'],
      [{ layers: [{ component: 'co de', version: 'v1' }] }, 'BAD_REQUEST'],
    ];
    for (const [payload, code] of cases) {
      const response = await env.app.inject({ method: 'PUT', url: '/v1/configurations/p', headers: env.auth.deployer, payload: payload as object });
      assert.equal(response.json().code, code, JSON.stringify(payload));
    }
    assert.equal((await env.app.inject({ method: 'PUT', url: `/v1/configurations/${'x'.repeat(129)}`, headers: env.auth.deployer, payload: { layers: [{ component: 'code', version: 'v1' }] } })).statusCode, 400);
    assert.deepEqual(await env.store.listConfigurations(), []);

    await env.app.inject({ method: 'PUT', url: '/v1/configurations/p', headers: env.auth.deployer, payload: { layers: [{ component: 'code', version: 'v1' }] } });
    const unconfirmed = await env.app.inject({ method: 'DELETE', url: '/v1/configurations/p', headers: env.auth.deployer });
    assert.equal(unconfirmed.json().code, 'CONFIRMATION_REQUIRED');
    assert.equal(unconfirmed.json().message, 'Run command with -force flag to confirm removal');
    const inUse = await env.app.inject({ method: 'DELETE', url: '/v1/components/code/versions/v1', headers: env.auth.deployer });
    assert.equal(inUse.json().code, 'IN_USE');
    assert.ok(await env.store.getConfiguration('p'));
    assert.ok(await env.store.getVersion('code', 'v1'));
    const duplicate = await env.app.inject({ method: 'POST', url: '/v1/components/code/versions', headers: env.auth.deployer, payload: { version: 'v1', blob: 'a'.repeat(64) } });
    assert.equal(duplicate.json().code, 'VERSION_EXISTS');
  });

  it('audits every write with its actor and outcome', async (t) => {
    const env = await testApp(t);
    await addVersion(t, env, 'code', 'v1', { 'app.js': '1' });
    await env.app.inject({ method: 'PUT', url: '/v1/configurations/p', headers: env.auth.deployer, payload: { layers: [{ component: 'code', version: 'v9' }] } });
    const audit = await env.app.inject({ method: 'GET', url: '/v1/audit', headers: env.auth.admin });
    const entries = audit.json().entries as { action: string; result: string; actor: string }[];
    assert.ok(entries.some((e) => e.action === 'version.add' && e.result === 'ok' && e.actor.includes(env.tokenIds.deployer)));
    assert.ok(entries.some((e) => e.action === 'configuration.put' && e.result === 'VERSION_NOT_FOUND'));
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/audit', headers: env.auth.viewer })).statusCode, 403);
  });
});

describe('the error catalog', () => {
  it('is listed exactly by docs/errors.md', async () => {
    const { ERROR_CATALOG } = await import('../src/protocol/error-codes.ts');
    const { readFile } = await import('node:fs/promises');
    const doc = await readFile(new URL('../docs/errors.md', import.meta.url), 'utf8');
    const documented = [...doc.matchAll(/^\| `([A-Z_]+)` \| (\d{3}) \|/gm)].map((m) => `${m[1]} ${m[2]}`).sort();
    const catalog = Object.entries(ERROR_CATALOG).map(([code, { status }]) => `${code} ${status}`).sort();
    assert.deepEqual(documented, catalog);
  });
});

void text;
