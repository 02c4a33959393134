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
import { once } from 'node:events';
import { WebSocket } from 'ws';
import { channelApp, enrolled, fakeAgent } from './helpers/fake-agent.ts';
import { METRICS_SUMMARY_VERSION } from '../src/protocol/metrics.ts';

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

test('summaries sent on a channel reach the fleet views; a malformed one is refused with an error message', async (t) => {
  const env = await channelApp(t, { pingIntervalMs: 60_000, silenceTimeoutMs: 120_000 });
  const agent = fakeAgent('edge-1');
  await enrolled(env, agent, { labels: { role: 'edge' } });
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = env.app.server.address() as { port: number };
  const socket = new WebSocket(`ws://127.0.0.1:${port}/v1/agent/channel`, { headers: { authorization: agent.authorization('GET', '/v1/agent/channel') } });
  const errors: { code: string; message: string }[] = [];
  socket.on('message', (data) => {
    const message = JSON.parse(String(data)) as { type: string; code: string; message: string };
    if (message.type === 'error') errors.push(message);
  });
  await once(socket, 'open');
  t.after(() => socket.close());
  const summary = {
    v: METRICS_SUMMARY_VERSION, at: new Date().toISOString(), intervalMs: 10_000, cpu: 12.5, cores: 4, load: [0.5, 0.4, 0.3],
    mem: { used: 1024, total: 4096 }, swap: { used: 0, total: 0 }, disk: { root: { mount: '/', used: 10, total: 100 } },
    net: { rx: 100, tx: 50 }, io: { read: 0, write: 0 }, uptime: 1000, services: [{ name: 'web', state: 'running', cpu: 1.5, rss: 2048, restarts: 1 }],
  };
  socket.send(JSON.stringify({ v: 1, id: 'm1', type: 'metrics', summary }));
  socket.send(JSON.stringify({ v: 1, id: 'm2', type: 'metrics', summary: { ...summary, cpu: 99 } }));
  socket.send(JSON.stringify({ v: 1, id: 'm3', type: 'metrics', summary: { ...summary, v: 2 } }));
  const deadline = Date.now() + 5000;
  while (errors.length === 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
  assert.equal(errors.length, 1);
  assert.equal(errors[0]!.code, 'BAD_REQUEST');
  assert.match(errors[0]!.message, /^invalid channel message: summary\.v: /);
  const top = (await env.app.inject({ method: 'GET', url: '/v1/fleet/top?selector=role%3Dedge', headers: env.auth.viewer })).json();
  assert.equal(top.agents.length, 1);
  assert.deepEqual(top.agents[0].metrics, summary, 'the second summary came too soon after the first and was dropped');
  const history = (await env.app.inject({ method: 'GET', url: '/v1/agents/edge-1/metrics', headers: env.auth.viewer })).json();
  assert.equal(history.online, true);
  assert.equal(history.history.length, 1);
});
