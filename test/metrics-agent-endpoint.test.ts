/**
 * The agent's local metrics endpoint, on a real agent process: Prometheus text read back by a
 * real parser, expvar-style JSON, 404 elsewhere, a Unix socket, a token when one is given, and a
 * refusal at start for a non-loopback address without a token.
 */
import assert from 'node:assert/strict';
import http from 'node:http';
import os from 'node:os';
import path from 'node:path';
import { stat, writeFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import { runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { joinToken, startAgent, waitFor, type TestAgent } from './helpers/strata-agent.ts';
import { parsePrometheus, sampleValue } from './helpers/prometheus.ts';

/** One plain HTTP GET to a TCP address or a Unix socket; bounded by a timeout. */
function get(target: { address?: string; socketPath?: string }, urlPath: string, headers: Record<string, string> = {}): Promise<{ status: number; type: string; body: string }> {
  const [host, port] = target.address ? [target.address.slice(0, target.address.lastIndexOf(':')), Number(target.address.slice(target.address.lastIndexOf(':') + 1))] : [undefined, undefined];
  return new Promise((resolve, reject) => {
    const request = http.get({ ...(target.socketPath ? { socketPath: target.socketPath } : { host: host === '0.0.0.0' ? '127.0.0.1' : host, port }), path: urlPath, headers, timeout: 10_000 }, (response) => {
      let body = '';
      response.setEncoding('utf8').on('data', (chunk: string) => (body += chunk)).on('end', () => resolve({ status: response.statusCode ?? 0, type: String(response.headers['content-type']), body }));
    });
    request.on('timeout', () => request.destroy(new Error('timed out')));
    request.on('error', reject);
  });
}

/** The endpoint address the agent logged. */
function loggedAddress(agent: TestAgent): Promise<string> {
  return waitFor('the metrics endpoint address in the agent log', async () => /"metricsAddress":"([^"]+)"/.exec(agent.logs())?.[1], 20_000);
}

describe('the agent metrics endpoint', () => {
  let root: string;
  let server: TestServer;
  let token: string;
  const agents: TestAgent[] = [];

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-metrics-endpoint-'));
    server = await startServer(path.join(root, 'server'));
    token = await joinToken(server);
  });
  after(async () => {
    for (const agent of agents) await agent.stop();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('serves Prometheus text and expvar JSON on loopback, 404 elsewhere, and never shows the join token', async () => {
    const agent = startAgent({ server, dir: path.join(root, 'a1'), name: 'm1', token, args: ['--metrics-interval', '1s', '--metrics-listen', '127.0.0.1:0'] });
    agents.push(agent);
    const address = await loggedAddress(agent);
    assert.match(address, /^127\.0\.0\.1:\d+$/);
    // The first reading is a baseline; a measured one follows within an interval or two.
    const families = await waitFor('a measured sample', async () => {
      const response = await get({ address }, '/metrics');
      assert.equal(response.status, 200);
      assert.equal(response.type, 'text/plain; version=0.0.4; charset=utf-8');
      const parsed = parsePrometheus(response.body);
      return (sampleValue(parsed, 'strata_node_sample_interval_seconds') ?? 0) > 0 ? parsed : undefined;
    }, 20_000, 250);
    assert.equal(sampleValue(families, 'strata_node_memory_total_bytes'), os.totalmem());
    const total = sampleValue(families, 'strata_node_cpu_busy_percent', { cpu: 'total' })!;
    assert.ok(total >= 0 && total <= 100, `cpu ${total}`);
    assert.equal(families.get('strata_node_cpu_busy_percent')!.metrics.length, os.cpus().length + 1, 'total plus one per core');
    assert.ok(sampleValue(families, 'strata_node_filesystem_size_bytes', { mountpoint: '/' })! > 0);
    assert.ok(sampleValue(families, 'strata_node_network_receive_bytes_total', { interface: 'lo' })! > 0);
    assert.equal(sampleValue(families, 'strata_agent_info', { name: 'm1' }), 1);
    const rss = sampleValue(families, 'process_resident_memory_bytes')!;
    assert.ok(rss > 10 * 1024 * 1024 && rss < 1024 ** 3, `agent RSS ${rss}`);

    const vars = await get({ address }, '/debug/vars');
    assert.equal(vars.status, 200);
    assert.match(vars.type, /^application\/json/);
    const json = JSON.parse(vars.body) as { cmdline: string[]; memstats: { Sys: number; HeapAlloc: number }; agent: { name: string; state: string }; sample: { memory: { totalBytes: number } } };
    assert.ok(json.cmdline.includes('agent') && json.cmdline.includes('--join-token'));
    assert.ok(!vars.body.includes(token), 'the join token is redacted');
    assert.ok(json.memstats.Sys > 0 && json.memstats.HeapAlloc > 0);
    assert.deepEqual([json.agent.name, json.agent.state], ['m1', 'running']);
    assert.equal(json.sample.memory.totalBytes, os.totalmem());

    assert.equal((await get({ address }, '/')).status, 404);
    assert.equal((await get({ address }, '/metrics/../debug')).status, 404);
  });

  it('listens on a Unix socket only its owner can open', async () => {
    const socketPath = path.join(root, 'metrics.sock');
    const agent = startAgent({ server, dir: path.join(root, 'a2'), name: 'm2', token, args: ['--metrics-interval', '1s', '--metrics-listen', `unix:${socketPath}`] });
    agents.push(agent);
    assert.equal(await loggedAddress(agent), `unix:${socketPath}`);
    assert.equal((await stat(socketPath)).mode & 0o777, 0o600);
    const response = await get({ socketPath }, '/metrics');
    assert.equal(response.status, 200);
    assert.equal(sampleValue(parsePrometheus(response.body), 'strata_agent_info', { name: 'm2' }), 1);
  });

  it('requires the bearer token when one is given, and then may listen on every interface', async () => {
    const tokenFile = path.join(root, 'metrics-token');
    const secret = 'metrics-secret-0123456789abcdef';
    await writeFile(tokenFile, `${secret}\n`, { mode: 0o600 });
    const agent = startAgent({ server, dir: path.join(root, 'a3'), name: 'm3', token, args: ['--metrics-interval', '1s', '--metrics-listen', '0.0.0.0:0', '--metrics-token-file', tokenFile] });
    agents.push(agent);
    const address = await loggedAddress(agent);
    assert.equal((await get({ address }, '/metrics')).status, 401);
    assert.equal((await get({ address }, '/metrics', { authorization: 'Bearer wrong-secret-0123456789abcdef' })).status, 401);
    assert.equal((await get({ address }, '/debug/vars', { authorization: `Bearer ${secret.slice(0, -1)}` })).status, 401);
    const ok = await get({ address }, '/metrics', { authorization: `Bearer ${secret}` });
    assert.equal(ok.status, 200);
    assert.equal(sampleValue(parsePrometheus(ok.body), 'strata_agent_info', { name: 'm3' }), 1);
    assert.ok(!agent.logs().includes(secret), 'the token is never logged');
  });

  it('exits with one line when the endpoint cannot listen', async () => {
    const busy = new URL(server.url).port;
    const result = await runStrata(['agent', '--dir', path.join(root, 'a4'), '--server', server.url, '--join-token', token, '--name', 'm4', '--log-level', 'fatal', '--metrics-listen', `127.0.0.1:${busy}`]);
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr, `--metrics-listen 127.0.0.1:${busy}: cannot listen there (EADDRINUSE)\n`);
  });

  it('refuses bad metrics flags at start with one line and exit status 2', async () => {
    const dir = path.join(root, 'never');
    const cases: [string[], RegExp][] = [
      [['--metrics-listen', '0.0.0.0:9464'], /^strata: --metrics-listen 0\.0\.0\.0:9464 is not a loopback address or Unix socket: give --metrics-token-file FILE to require a token there\n$/],
      [['--metrics-listen', '10.1.2.3:9464'], /is not a loopback address/],
      [['--metrics-listen', 'localhost'], /^strata: --metrics-listen: invalid address "localhost": write it like/],
      [['--metrics-interval', '500ms'], /^strata: --metrics-interval must be at least 1s\n$/],
      [['--metrics-token-file', '/nonexistent'], /^strata: --metrics-token-file needs --metrics-listen\n$/],
    ];
    for (const [args, expected] of cases) {
      const result = await runStrata(['agent', '--dir', dir, ...args]);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, expected);
    }
  });
});
