/**
 * The cluster bus through NATS failures, on a real three-node NATS cluster: kill -9 of the node a
 * replica is connected to, then a restart of the whole cluster. The replicas reconnect on their
 * own, presence resynchronises, and orders keep reaching agents on the other replica.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import type { Store } from '../src/store/contract.ts';
import { enrolled, fakeAgent } from './helpers/fake-agent.ts';
import { orderAgent, type OrderAgent } from './helpers/order-agent.ts';
import { startNatsCluster, type NatsDeployment } from './helpers/nats-server.ts';
import { onlineAgents, resultsByHost, sendOrder, startReplica, type Replica } from './helpers/replicas.ts';
import { waitFor } from './helpers/strata-agent.ts';

let dir: string;
let nats: NatsDeployment;
let store: Store;
let a: Replica;
let b: Replica;
const agents: OrderAgent[] = [];

/** Pings the hosts through A until every one answers OK (bounded), returning how long it took. */
async function pingsThroughA(hosts: string[], timeoutMs: number): Promise<number> {
  const started = Date.now();
  await waitFor(`${hosts.join(', ')} to answer through A`, async () => {
    const results = resultsByHost(await sendOrder(a, { target: { hosts }, args: { verb: 'ping' }, timeoutMs: 2000 }));
    return hosts.every((host) => results[host]?.ok === true);
  }, timeoutMs, 100);
  return Date.now() - started;
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'strata-nats-faults-'));
  nats = await startNatsCluster();
  store = await openSqliteStore({ dir: path.join(dir, 'store') });
  // A on node 0, B on node 1; each knows every node, as an operator would configure them.
  const urls = nats.servers;
  a = await startReplica(store, [urls[0]!, urls[2]!], 'faults');
  b = await startReplica(store, [urls[1]!, urls[2]!], 'faults');
  for (const name of ['f1', 'f2']) {
    const identity = fakeAgent(name);
    await enrolled(a.env, identity);
    agents.push(await orderAgent(`ws://${b.base}`, identity));
  }
});

after(async () => {
  for (const agent of agents) await agent.close();
  await a?.close();
  await b?.close();
  await store?.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('cluster bus through NATS failures', () => {
  it('routes orders from A to agents on B across a three-node cluster', async () => {
    await waitFor('A to see B\'s agents', async () => JSON.stringify(await onlineAgents(a)) === '{"f1":true,"f2":true}', 5000, 50);
    await pingsThroughA(['f1', 'f2'], 5000);
  });

  it('survives kill -9 of the node A is connected to', async () => {
    await nats.kill(nats.nodes[0]!);
    const took = await pingsThroughA(['f1', 'f2'], 20_000);
    assert.deepEqual(await onlineAgents(a), { f1: true, f2: true }, 'presence did not drop the agents for good');
    await nats.restart(nats.nodes[0]!);
    assert.ok(took < 20_000);
  });

  it('recovers after the whole NATS cluster restarts, without help', async () => {
    for (const node of nats.nodes) await nats.kill(node);
    // While NATS is away, B's agents are unknown to A (B is silent) and orders give OFFLINE, not a hang.
    await waitFor('A to give up on B', async () => (await onlineAgents(a))['f1'] === false, 5000, 50);
    const offline = resultsByHost(await sendOrder(a, { target: { hosts: ['f1'] }, args: { verb: 'ping' }, timeoutMs: 2000 }));
    assert.equal(offline['f1']!.code, 'OFFLINE');
    await Promise.all(nats.nodes.map((node) => nats.restart(node)));
    const took = await pingsThroughA(['f1', 'f2'], 30_000);
    assert.deepEqual(await onlineAgents(a), { f1: true, f2: true });
    assert.ok(took < 30_000, `recovered after ${took} ms`);
  });
});
