/**
 * The NATS backend on a three-node JetStream cluster with every stream and bucket at R3: after
 * kill -9 of the node leading the ledger, every write the store acknowledged is still readable
 * through the same store (once the survivors elect new leaders), new writes succeed, and the
 * killed node rejoins from its store dir.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { connect } from '@nats-io/transport-node';
import { jetstreamManager } from '@nats-io/jetstream';
import type { Store } from '../src/store/contract.ts';
import { addVersion, chunks, putConfiguration, readAll } from '../src/store/conformance-helpers.ts';
import { natsLayout } from '../src/store/nats/connection.ts';
import { openNatsStore } from '../src/store/nats/nats-store.ts';
import { startNatsCluster, type NatsDeployment } from './helpers/nats-server.ts';

let cluster: NatsDeployment;
let store: Store | undefined;
let spoolDir: string;

before(async () => {
  cluster = await startNatsCluster();
  spoolDir = await mkdtemp(path.join(os.tmpdir(), 'strata-nats-spool-'));
});
after(async () => {
  await store?.close();
  await cluster?.stop();
  await rm(spoolDir, { recursive: true, force: true });
});

/** Retries `read` until it succeeds (the cluster is electing leaders meanwhile), for up to 30 s. */
async function eventually<T>(read: () => Promise<T>): Promise<T> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      return await read();
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await sleep(200);
    }
  }
}

it('keeps every acknowledged write across kill -9 of the ledger leader', async () => {
  store = await openNatsStore({ servers: cluster.servers, replicas: 3, prefix: 'strata', spoolDir });
  const blob = Buffer.alloc(600_000, 5);
  const stored = await store.putBlob(chunks(blob.subarray(0, 300_000), blob.subarray(300_000)));
  const v1 = await store.addVersion({ component: 'app', version: '1', blob: stored.sha256, actor: 'tester' });
  const v2 = await addVersion(store, 'app', '2');
  let prod = await putConfiguration(store, 'prod', [v1], 0);
  for (let i = 0; i < 5; i += 1) prod = await putConfiguration(store, 'prod', [i % 2 ? v1 : v2], prod.revision, { note: `write ${i}` });
  await store.createToken({ id: 'tok', kind: 'api', role: 'admin', name: 'n', secretHash: 'h', createdAt: prod.updatedAt, createdBy: 'r' });
  const agent = await store.putAgent({ name: 'web-1', labels: { role: 'web' }, tracks: ['prod'], enrolledAt: prod.updatedAt }, 0);
  const audit = await store.appendAudit({ actor: 'r', action: 'a', target: 't', result: 'ok' });
  await store.createOrder({ id: 'o1', actor: 'r', args: {}, target: {}, hosts: ['web-1'] });
  await store.putStateIfAbsent('ca', 'pem');
  const history = await store.configurationHistory('prod');

  const admin = await connect({ servers: cluster.servers });
  const leaderName = (await (await jetstreamManager(admin)).streams.info(natsLayout('strata').ledger.stream)).cluster?.leader;
  await admin.close();
  const leader = cluster.nodes.find((n) => n.name === leaderName) ?? cluster.nodes[0]!;
  await cluster.kill(leader);

  const s = store;
  assert.deepEqual(await eventually(() => s.getConfiguration('prod')), prod);
  assert.deepEqual(await eventually(() => s.configurationHistory('prod')), history);
  assert.deepEqual(await eventually(() => s.getVersion('app', '1')), v1);
  assert.deepEqual(await eventually(async () => readAll((await s.getBlob(stored.sha256)).stream)), blob);
  assert.equal((await eventually(() => s.getToken('tok')))?.name, 'n');
  assert.deepEqual(await eventually(() => s.getAgent('web-1')), agent);
  assert.deepEqual(await eventually(() => s.listAudit({ limit: 10 })), [audit]);
  assert.equal((await eventually(() => s.getOrder('o1')))?.id, 'o1');
  assert.equal(await eventually(() => s.getState('ca')), 'pem');
  const next = await eventually(() => putConfiguration(s, 'prod', [v1], prod.revision, { note: 'after failover' }));
  assert.ok(next.seq > prod.seq);

  await cluster.restart(leader);
  assert.deepEqual((await eventually(() => s.configurationHistory('prod'))).length, history.length + 1);
});
