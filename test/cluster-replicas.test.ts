/**
 * Two server replicas in one process, sharing one store and talking through a real nats-server:
 * presence seen from either replica, orders sent through A answered by agents on B, a channel
 * closing mid-order, revocation and assignment changes reaching the replica holding the agent,
 * and a replica that dies taking its agents' presence with it.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/contract.ts';
import { enrolled, fakeAgent, version, configure } from './helpers/fake-agent.ts';
import { orderAgent, type Behaviour, type OrderAgent } from './helpers/order-agent.ts';
import { startNatsServer, type NatsDeployment } from './helpers/nats-server.ts';
import { TEST_BUS_TIMING as BUS_TIMING, cutNats, onlineAgents as online, resultsByHost as results, sendOrder, startReplica, type Replica } from './helpers/replicas.ts';
import { waitFor } from './helpers/strata-agent.ts';
import type { TestApp } from './helpers/app.ts';

let dir: string;
let nats: NatsDeployment;
let store: Store;
const cleanups: (() => Promise<void>)[] = [];

async function replica(prefix: string): Promise<Replica> {
  const started = await startReplica(store, nats.servers, prefix);
  cleanups.push(() => started.close());
  return started;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'strata-replicas-'));
  nats = await startNatsServer();
  store = await openSqliteStore({ dir: path.join(dir, 'store') });
});

after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
  await store.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('server replicas on one NATS', () => {
  let a: Replica;
  let b: Replica;
  let envA: TestApp;
  const agents: Record<string, OrderAgent> = {};
  const identities = Object.fromEntries(['w1', 'w2', 'w3', 'w4', 'slow'].map((name) => [name, fakeAgent(name)]));

  before(async () => {
    a = await replica('r1');
    b = await replica('r1');
    envA = a.env;
    for (const identity of Object.values(identities)) await enrolled(envA, identity, { labels: { role: 'web' } });
    const never: Behaviour = async () => undefined;
    agents['w1'] = await orderAgent(`ws://${b.base}`, identities['w1']!);
    agents['w2'] = await orderAgent(`ws://${b.base}`, identities['w2']!);
    agents['w3'] = await orderAgent(`ws://${a.base}`, identities['w3']!);
    agents['slow'] = await orderAgent(`ws://${b.base}`, identities['slow']!, never);
    cleanups.push(async () => {
      for (const agent of Object.values(agents)) await agent.close();
    });
  });

  it('shows agents online whichever replica answers, and names each replica in /v1/health', async () => {
    const expected = { slow: true, w1: true, w2: true, w3: true, w4: false };
    await waitFor('A to see B\'s agents', async () => JSON.stringify(await online(a)) === JSON.stringify(expected), 3000, 20);
    assert.deepEqual(await online(b), expected);
    const healthA = (await a.app.inject({ method: 'GET', url: '/v1/health' })).json();
    assert.equal(healthA.replica, a.bus.replica);
    assert.deepEqual(healthA.peers, [b.bus.replica]);
    const shown = (await a.app.inject({ method: 'GET', url: '/v1/agents/w1', headers: envA.auth.viewer })).json();
    assert.equal(shown.online, true);
    assert.equal(shown.replica, b.bus.replica, 'A says which replica holds w1');
    const own = (await b.app.inject({ method: 'GET', url: '/v1/agents/w3', headers: envA.auth.viewer })).json();
    assert.equal(own.replica, a.bus.replica);
    const offline = (await a.app.inject({ method: 'GET', url: '/v1/agents/w4', headers: envA.auth.viewer })).json();
    assert.equal(offline.replica, undefined);
  });

  it('runs an order sent through A on agents held by B and A, with one result per host', async () => {
    const events = await sendOrder(a, { target: { hosts: ['w1', 'w2', 'w3', 'w4'] }, args: { verb: 'exec', name: 'uptime', args: ['-p'] } });
    const byHost = results(events);
    assert.deepEqual(Object.keys(byHost).sort(), ['w1', 'w2', 'w3', 'w4']);
    for (const host of ['w1', 'w2', 'w3']) {
      assert.equal(byHost[host]!.ok, true, `${host}: ${JSON.stringify(byHost[host])}`);
      assert.deepEqual(byHost[host]!.content, { echo: { verb: 'exec', name: 'uptime', args: ['-p'] } });
    }
    assert.equal(byHost['w4']!.code, 'OFFLINE');
    assert.deepEqual(events.at(-1)!.type === 'done' && events.at(-1), { type: 'done', summary: { ok: 3, failed: 1, offline: 1, timedOut: 0 }, at: events.at(-1)!.at });
    // Every order message for B's agents went through B's channel, exactly once each.
    assert.equal(agents['w1']!.received.filter((m) => m.type === 'order').length, 1);
  });

  it('gives OFFLINE at once when the agent on B disconnects mid-order, and cancels at the deadline through B', async () => {
    const pending = sendOrder(a, { target: { hosts: ['slow'] }, args: { verb: 'ping' }, timeoutMs: 20_000 });
    await agents['slow']!.waitFor('order', 3000);
    const closedAt = Date.now();
    await agents['slow']!.close();
    const events = await pending;
    assert.equal(results(events)['slow']!.code, 'OFFLINE');
    assert.ok(Date.now() - closedAt < 2000, `OFFLINE came ${Date.now() - closedAt} ms after the channel closed`);

    agents['slow'] = await orderAgent(`ws://${b.base}`, identities['slow']!, async () => undefined);
    await waitFor('A to see slow again', async () => (await online(a))['slow'] === true, 3000, 20);
    const timedOut = await sendOrder(a, { target: { hosts: ['slow'] }, args: { verb: 'ping' }, timeoutMs: 500 });
    assert.equal(results(timedOut)['slow']!.code, 'TIMEOUT');
    const cancel = await agents['slow']!.waitFor('order-cancel', 3000);
    assert.equal(cancel.type === 'order-cancel' && cancel.orderId, (timedOut[0] as { id: string }).id);
  });

  it('pushes an assignment made through A to an agent held by B, and a configuration change within a second', async () => {
    await version(envA, 'web', 'v1');
    await configure(envA, 'site', [['web', 'v1']]);
    const before = agents['w1']!.received.filter((m) => m.type === 'desired').length;
    const put = await a.app.inject({ method: 'PUT', url: '/v1/assignments', headers: envA.auth.deployer, payload: { configuration: 'site', selector: 'role=web' } });
    assert.equal(put.statusCode, 200, put.body);
    const desired = await waitFor('w1 to get site', async () => {
      const last = agents['w1']!.received.filter((m) => m.type === 'desired');
      const state = last.length > before && last.at(-1)!.type === 'desired' ? (last.at(-1) as { state: { configurations: { name: string; revision: number }[] } }).state : undefined;
      return state?.configurations.some((c) => c.name === 'site') ? state : undefined;
    }, 3000, 10);
    assert.equal(desired.configurations[0]!.revision, 1);

    await version(envA, 'web', 'v2');
    const changedAt = Date.now();
    await configure(envA, 'site', [['web', 'v2']]);
    await waitFor('w1 to get revision 2', async () => agents['w1']!.received.some((m) => m.type === 'desired' && m.state.configurations.some((c) => c.name === 'site' && c.revision === 2)), 2000, 10);
    assert.ok(Date.now() - changedAt < 1000, `took ${Date.now() - changedAt} ms`);
  });

  it('closes a revoked agent\'s channel on the replica holding it', async () => {
    const response = await a.app.inject({ method: 'POST', url: '/v1/agents/w2/revoke', headers: envA.auth.admin });
    assert.equal(response.statusCode, 200, response.body);
    await waitFor('w2\'s channel on B to close', async () => agents['w2']!.closeCode() !== undefined, 3000, 10);
    assert.equal(agents['w2']!.closeCode(), 4001);
    assert.equal(agents['w1']!.closeCode(), undefined, 'other agents on B stay connected');
  });

  it('forgets the agents of a replica that dies, and answers OFFLINE for them', async () => {
    const c = await replica('r1');
    agents['w4'] = await orderAgent(`ws://${c.base}`, identities['w4']!);
    await waitFor('A to see w4 on C', async () => (await online(a))['w4'] === true, 3000, 20);
    // C dies without a word: its NATS connection is cut and its sockets stop answering.
    await cutNats(c);
    const died = Date.now();
    await waitFor('A to show w4 offline', async () => (await online(a))['w4'] === false, 5000, 20);
    const took = Date.now() - died;
    assert.ok(took < BUS_TIMING.expireMs + 1000, `presence healed after ${took} ms`);
    const events = await sendOrder(a, { target: { hosts: ['w4'] }, args: { verb: 'ping' } });
    assert.equal(results(events)['w4']!.code, 'OFFLINE');
    // C, cut off from NATS, stops seeing B's agents once B's claims expire there too.
    await waitFor('C to forget B\'s agents', async () => (await online(c))['w1'] === false, BUS_TIMING.expireMs + 2000, 20);
  });
});
