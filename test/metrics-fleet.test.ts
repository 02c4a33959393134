/**
 * Fleet metrics end to end: a real server and agent; the agent's summaries reach `strata top` and
 * `strata agents show --metrics`, and the server's own Prometheus /metrics reads back through a
 * real parser with the connected agent counted.
 */
import assert from 'node:assert/strict';
import os from 'node:os';
import path from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { spawn, spawnSync } from 'node:child_process';
import { once } from 'node:events';
import { createHttpClient, type HttpClient } from '../src/lib/http-client.ts';
import type { FleetTop } from '../src/protocol/metrics.ts';
import { CLI, runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { joinToken, startAgent, waitFor, type TestAgent } from './helpers/strata-agent.ts';
import { parsePrometheus, sampleValue } from './helpers/prometheus.ts';

describe('fleet metrics with a real server and agent', () => {
  let root: string;
  let server: TestServer;
  let agent: TestAgent;
  let client: HttpClient;

  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-metrics-fleet-'));
    server = await startServer(path.join(root, 'server'));
    client = createHttpClient({ baseUrl: server.url, fingerprint: server.fingerprint });
    agent = startAgent({ server, dir: path.join(root, 'agent'), name: 'web-1', token: await joinToken(server), args: ['--metrics-interval', '1s', '--labels', 'role=web'] });
  });
  after(async () => {
    await agent?.stop();
    client?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it("shows the agent's vital signs in strata top within a couple of sample intervals", async () => {
    const started = Date.now();
    const top = await waitFor('the agent in strata top with metrics', async () => {
      const result = await runStrata(['top', '--once', '--json'], server.env);
      assert.equal(result.code, 0, result.stderr);
      const parsed = JSON.parse(result.stdout) as FleetTop;
      return parsed.agents[0]?.metrics ? parsed : undefined;
    }, 30_000, 300);
    const elapsed = Date.now() - started;
    const row = top.agents[0]!;
    assert.equal(row.name, 'web-1');
    assert.equal(row.online, true);
    assert.deepEqual(row.labels, { role: 'web' });
    const m = row.metrics!;
    assert.equal(m.mem.total, os.totalmem());
    assert.ok(m.mem.used > 0 && m.mem.used < m.mem.total);
    assert.equal(m.cores, os.cpus().length);
    assert.ok(m.cpu >= 0 && m.cpu <= 100);
    assert.ok(m.intervalMs >= 900 && m.intervalMs < 5000, `measured over ${m.intervalMs} ms`);
    assert.ok(m.disk.root && m.disk.root.total > 0);
    assert.ok(Math.abs(m.uptime - os.uptime()) < 10);
    assert.ok(elapsed < 15_000, `took ${elapsed} ms`);

    const table = await runStrata(['top', '--once', '--sort', 'mem'], server.env);
    assert.equal(table.code, 0, table.stderr);
    const [header, line] = table.stdout.split('\n');
    assert.match(header!, /^NAME\s+ONLINE\s+CPU\s+LOAD\s+MEM\s+DISK \(FULLEST\)\s+NET RX \/ TX\s+CONFIGS\s+LABELS$/);
    assert.match(line!, /^web-1\s+yes\s+\d+\.\d%\s+[\d.]+ [\d.]+ [\d.]+\s+\d+% of [\d.]+ [KMGT]iB\s+\d+% of .* \/\s+.*role=web$/);

    const other = await runStrata(['top', '--once', '--json', '--selector', 'role=db'], server.env);
    assert.deepEqual(JSON.parse(other.stdout), { agents: [] });
  });

  it('shows the latest values and a short history with agents show --metrics', async () => {
    const history = await waitFor('two summaries in the history', async () => {
      const result = await runStrata(['agents', 'show', 'web-1', '--metrics', '--json'], server.env);
      assert.equal(result.code, 0, result.stderr);
      const shown = JSON.parse(result.stdout) as { name: string; metrics: { keep: number; history: { at: string }[] } };
      return shown.metrics.history.length >= 2 ? shown : undefined;
    }, 20_000, 300);
    assert.equal(history.name, 'web-1');
    assert.equal(history.metrics.keep, 60);
    const times = history.metrics.history.map((h) => h.at);
    assert.deepEqual([...times].sort(), times, 'oldest first');
    const text = await runStrata(['agents', 'show', 'web-1', '--metrics'], server.env);
    assert.equal(text.code, 0, text.stderr);
    assert.match(text.stdout, /^cpu:\s+\d+\.\d% of \d+ cores?$/m);
    assert.match(text.stdout, /^memory:\s+.* used, \d+% of /m);
    assert.match(text.stdout, /^last \d+ of \d+ samples kept:\nTIME\s+CPU\s+LOAD1\s+MEM\s+NET RX\s+NET TX\n\d\d:\d\d:\d\dZ/m);
    const missing = await runStrata(['agents', 'show', 'nobody', '--metrics'], server.env);
    assert.equal(missing.code, 1);
    assert.match(missing.stderr, /^agent "nobody" not found\n$/);
  });

  it("serves the server's own Prometheus /metrics to a viewer, counting the connected agent", async () => {
    const refused = await client.request({ method: 'GET', path: '/metrics' });
    await refused.text();
    assert.equal(refused.status, 401);
    const viewer = await runStrata(['token', 'create', '--role', 'viewer', '--name', 'scraper', '--json'], server.env);
    assert.equal(viewer.code, 0, viewer.stderr);
    const secret = (JSON.parse(viewer.stdout) as { token: string }).token;
    await runStrata(['ping', '--all'], server.env);
    const response = await client.request({ method: 'GET', path: '/metrics', headers: { authorization: `Bearer ${secret}` } });
    const text = await response.text();
    assert.equal(response.status, 200, text);
    assert.match(String(response.headers['content-type']), /^text\/plain; version=0\.0\.4/);
    const families = parsePrometheus(text);
    assert.equal(sampleValue(families, 'strata_connected_agents'), 1);
    assert.equal(sampleValue(families, 'strata_store_objects', { kind: 'agents' }), 1);
    assert.equal(sampleValue(families, 'strata_orders_started_total', { verb: 'ping' }), 1);
    await waitFor('the ping order counted as finished', async () => {
      const again = await client.request({ method: 'GET', path: '/metrics', headers: { authorization: `Bearer ${secret}` } });
      return sampleValue(parsePrometheus(await again.text()), 'strata_orders_finished_total', { verb: 'ping', outcome: 'ok' }) === 1;
    }, 10_000, 200);
    const latency = families.get('strata_http_request_duration_seconds');
    assert.equal(latency?.type, 'HISTOGRAM');
    // The parser keeps a histogram's buckets but not its labelled counts, so the count is read from the text it accepted.
    const count = /^strata_http_request_duration_seconds_count\{method="GET",route="\/v1\/fleet\/top",status="200"\} (\d+)$/m.exec(text);
    assert.ok(count && Number(count[1]) >= 1, 'strata top requests were timed');
    assert.ok(families.has('process_resident_memory_bytes'), 'process metrics are included');
    assert.ok(families.has('strata_deploys'));
  });

  it('redraws in place on a terminal until Ctrl-C', { skip: spawnSync('script', ['--version']).status === 0 ? false : 'needs util-linux script(1) for a pseudo-terminal' }, async () => {
    const command = `exec ${[process.execPath, CLI, 'top', '--interval', '500ms'].map((arg) => `'${arg}'`).join(' ')}`;
    const child = spawn('script', ['-qfec', command, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'], env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', TERM: 'xterm', ...server.env } });
    let output = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (output += chunk));
    const exited = once(child, 'exit');
    try {
      await waitFor('three frames', async () => (output.match(/\x1b\[Hstrata top/g) ?? []).length >= 3, 20_000, 100);
    } finally {
      child.stdin.write('\x03');
    }
    const [code] = await Promise.race([exited, new Promise<[null]>((resolve) => setTimeout(() => resolve([null]), 10_000))]);
    if (code === null) child.kill('SIGKILL');
    assert.equal(code, 0, output);
    assert.match(output, /1\/1 online, sorted by cpu \(Ctrl-C quits\)/);
    assert.match(output, /web-1\s+yes\s+\d+\.\d%/);
  });

  it('refuses bad top flags with one line and exit status 2', async () => {
    for (const [args, expected] of [
      [['--sort', 'disk-io'], /^strata: --sort "disk-io": use one of cpu, mem, disk, load, name\n$/],
      [['--interval', 'soon'], /^strata: --interval: invalid duration "soon"/],
      [['--interval', '100ms'], /^strata: --interval must be at least 500ms\n$/],
      [['--selector', 'role=web,'], /^strata: --selector: /],
    ] as [string[], RegExp][]) {
      const result = await runStrata(['top', '--once', ...args], server.env);
      assert.equal(result.code, 2, `${args.join(' ')}: ${result.stderr}`);
      assert.match(result.stderr, expected);
    }
  });
});
