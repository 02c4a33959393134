/**
 * The server's metrics routes through inject(): its Prometheus /metrics (a registry per app, so two
 * apps in one process both work), who may read it, and the errors of the fleet metrics routes.
 * A real server started with --metrics-public serves /metrics without a token.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { createHttpClient } from '../src/lib/http-client.ts';
import { testApp } from './helpers/app.ts';
import { parsePrometheus, sampleValue } from './helpers/prometheus.ts';
import { startServer } from './helpers/strata-server.ts';
import { tempDir } from './helpers/temp-dir.ts';

test('each app has its own /metrics registry; a viewer may read it, nobody else', async (t) => {
  const first = await testApp(t);
  const second = await testApp(t);
  for (const { app, auth } of [first, second]) {
    assert.equal((await app.inject({ method: 'GET', url: '/metrics' })).statusCode, 401);
    const response = await app.inject({ method: 'GET', url: '/metrics', headers: auth.viewer });
    assert.equal(response.statusCode, 200, response.body);
    const families = parsePrometheus(response.body);
    assert.equal(sampleValue(families, 'strata_connected_agents'), 0);
    assert.equal(sampleValue(families, 'strata_store_objects', { kind: 'configurations' }), 0);
    assert.equal(sampleValue(families, 'strata_deploys', { phase: 'deployed' }), 0);
  }
  // Requests of one app are not counted by the other.
  const again = await first.app.inject({ method: 'GET', url: '/metrics', headers: first.auth.viewer });
  assert.match(again.body, /^strata_http_request_duration_seconds_count\{method="GET",route="\/metrics",status="200"\} 1$/m);
  assert.match(again.body, /^strata_http_request_duration_seconds_count\{method="GET",route="\/metrics",status="401"\} 1$/m);
});

test('the fleet metrics routes refuse unknown agents and bad selectors with catalog codes', async (t) => {
  const { app, auth } = await testApp(t);
  const missing = await app.inject({ method: 'GET', url: '/v1/agents/nobody/metrics', headers: auth.viewer });
  assert.equal(missing.statusCode, 404);
  assert.equal(missing.json().code, 'AGENT_NOT_FOUND');
  const bad = await app.inject({ method: 'GET', url: '/v1/fleet/top?selector=role%3Dweb%2C', headers: auth.viewer });
  assert.equal(bad.statusCode, 400);
  assert.equal(bad.json().code, 'INVALID_SELECTOR');
  const empty = await app.inject({ method: 'GET', url: '/v1/fleet/top', headers: auth.viewer });
  assert.deepEqual(empty.json(), { agents: [] });
  assert.equal((await app.inject({ method: 'GET', url: '/v1/fleet/top' })).statusCode, 401);
});

test('a server started with --metrics-public serves /metrics without a token, and the API still needs one', async (t) => {
  const server = await startServer(path.join(await tempDir(t), 'data'), ['--metrics-public']);
  t.after(() => server.stop());
  const client = createHttpClient({ baseUrl: server.url, fingerprint: server.fingerprint });
  t.after(() => client.close());
  const response = await client.request({ method: 'GET', path: '/metrics' });
  const text = await response.text();
  assert.equal(response.status, 200, text);
  assert.equal(sampleValue(parsePrometheus(text), 'strata_connected_agents'), 0);
  const api = await client.request({ method: 'GET', path: '/v1/fleet/top' });
  await api.text();
  assert.equal(api.status, 401);
});
