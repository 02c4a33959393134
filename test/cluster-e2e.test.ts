/**
 * End to end with real processes: two `strata server --store nats` replicas on one nats-server,
 * real agents connected to B. A new replica joins with an empty data directory (same CA, same
 * tokens); an order sent through A gets one result per host from B's agents; a change made
 * through A reaches them quickly; kill -9 of B sends its agents to A and presence heals.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { access, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { agentRecord, joinToken, startAgent, waitFor, type TestAgent } from './helpers/strata-agent.ts';
import { startNatsServer, type NatsDeployment } from './helpers/nats-server.ts';
import { createHttpClient } from '../src/lib/http-client.ts';

let root: string;
let nats: NatsDeployment;
let a: TestServer;
let b: TestServer;
const agents: TestAgent[] = [];

async function ok(server: TestServer, args: string[]): Promise<string> {
  const result = await runStrata(args, server.env);
  assert.equal(result.code, 0, `strata ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

async function push(version: string): Promise<void> {
  const dir = path.join(root, 'src', version);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.html'), version);
  await ok(a, ['push', dir, '--name', 'code', '--version', version]);
}

async function online(server: TestServer): Promise<Record<string, boolean>> {
  const listed = JSON.parse(await ok(server, ['agents', '--json'])) as { name: string; online: boolean }[] | { agents: { name: string; online: boolean }[] };
  const rows = Array.isArray(listed) ? listed : listed.agents;
  return Object.fromEntries(rows.map((row) => [row.name, row.online]));
}

/** GET /v1/health over TLS, pinning the CA fingerprint. */
async function health(server: TestServer): Promise<{ replica: string; peers: string[] }> {
  const client = createHttpClient({ baseUrl: server.url, fingerprint: server.fingerprint });
  try {
    const response = await client.request({ method: 'GET', path: '/v1/health' });
    return await response.json<{ replica: string; peers: string[] }>();
  } finally {
    client.close();
  }
}

describe('server replicas as real processes on one NATS', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-cluster-e2e-'));
    nats = await startNatsServer();
    a = await startServer(path.join(root, 'a'), [], { store: 'nats', nats: nats.servers[0]! });
    b = await startServer(path.join(root, 'b'), [], { store: 'nats', nats: nats.servers[0]!, token: a.token });
  });
  after(async () => {
    await Promise.all(agents.map((agent) => agent.stop('SIGKILL')));
    await a?.stop();
    await b?.stop('SIGKILL');
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('a replica started with an empty data directory has the same CA, accepts the same tokens and writes no credentials of its own', async () => {
    assert.match(a.fingerprint, /^[0-9a-f]{64}$/);
    assert.equal(b.fingerprint, a.fingerprint);
    assert.match(await ok(b, ['token', 'list', '--json']), /bootstrap-admin/, 'the token A created on its first start works on B');
    await assert.rejects(access(path.join(b.dataDir, 'admin.env')));
    const [ha, hb] = [await health(a), await health(b)];
    assert.notEqual(ha.replica, hb.replica);
    await waitFor('the replicas to hear each other', async () => (await health(a)).peers.includes(hb.replica) && (await health(b)).peers.includes(ha.replica), 5000);
  });

  it('runs an order sent through A on agents held by B, and a change through A reaches them within 2 s', async (t) => {
    await push('v1');
    await ok(a, ['addconf', '--name', 'site', '--layer', 'code:v1']);
    const token = await joinToken(a);
    for (const name of ['w1', 'w2']) {
      agents.push(startAgent({ dir: path.join(root, name), name, token, args: ['--server', `${b.url},${a.url}`, '--track', 'site', '--metrics-interval', '1s'] }));
    }
    for (const name of ['w1', 'w2']) {
      await waitFor(`${name} deployed`, async () => (await agentRecord(a, name)).configurations?.[0]?.phase === 'deployed', 30_000);
    }
    assert.deepEqual(await online(a), { w1: true, w2: true });
    assert.deepEqual(await online(b), { w1: true, w2: true });

    const pinged = JSON.parse(await ok(a, ['ping', '--all', '--json'])) as Record<string, { ok: boolean; code: string }>;
    assert.deepEqual(Object.keys(pinged).sort(), ['w1', 'w2']);
    for (const host of ['w1', 'w2']) assert.equal(pinged[host]!.ok, true, JSON.stringify(pinged[host]));

    await push('v2');
    // Timed from the moment the change is stored (the CLI has returned), not from the CLI's start.
    await ok(a, ['changeconf', '--name', 'site', '--component', 'code', '--version', 'v2']);
    const changedAt = Date.now();
    const file = path.join(root, 'w1', 'site', 'current', 'index.html');
    await waitFor('w1 to deploy v2', async () => (await readFile(file, 'utf8').catch(() => '')) === 'v2', 5000, 20);
    const took = Date.now() - changedAt;
    t.diagnostic(`changeconf through A deployed on an agent held by B in ${took} ms`);
    assert.ok(took < 2000, `the change reached an agent on B after ${took} ms`);
  });

  it('strata top through A shows the metrics of agents held by B', async () => {
    type Top = { agents: { name: string; online: boolean; metrics: { mem: { total: number } } | null }[] };
    const top = await waitFor('both agents with metrics in A\'s top', async () => {
      const shown = JSON.parse(await ok(a, ['top', '--once', '--json'])) as Top;
      return shown.agents.filter((row) => row.metrics !== null).length === 2 ? shown : undefined;
    }, 15_000);
    for (const row of top.agents) {
      assert.equal(row.online, true);
      assert.ok(row.metrics!.mem.total > 0);
    }
    const history = JSON.parse(await ok(a, ['agents', 'show', 'w1', '--metrics', '--json'])) as { metrics: { history: unknown[] } };
    assert.ok(history.metrics.history.length >= 1);
  });

  it('kill -9 of B: its agents reconnect to A, orders reach them, and no stale presence remains', async (t) => {
    const killedAt = Date.now();
    await b.stop('SIGKILL');
    await waitFor('A to forget B', async () => (await health(a)).peers.length === 0, 10_000);
    const pinged = await waitFor('both agents to answer through A', async () => {
      const result = await runStrata(['ping', '--all', '--json', '--timeout', '3s'], a.env);
      const parsed = JSON.parse(result.stdout || '{}') as Record<string, { ok: boolean }>;
      return parsed['w1']?.ok && parsed['w2']?.ok ? parsed : undefined;
    }, 30_000, 200);
    assert.equal(Object.keys(pinged).length, 2);
    t.diagnostic(`both agents answered through A ${Date.now() - killedAt} ms after kill -9 of B`);
    // An agent that dies now is offline at once: nothing of B's claims is left to say otherwise.
    await agents[1]!.stop('SIGKILL');
    await waitFor('w2 offline on A', async () => (await online(a))['w2'] === false, 10_000);
    assert.equal((await online(a))['w1'], true);
  });
});
