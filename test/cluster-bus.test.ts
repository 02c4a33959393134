/** The cluster bus on a real nats-server: presence and its expiry, a late joiner's sync, order routing, broadcasts, a newer session elsewhere. */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../src/lib/logger.ts';
import { connectNats } from '../src/store/nats/connection.ts';
import { NatsBus } from '../src/server/cluster/nats-bus.ts';
import type { AgentCommand, BusHandlers, ClusterEvent } from '../src/server/cluster/bus.ts';
import type { OrderReply } from '../src/server/channel/session.ts';
import { startNatsServer, type NatsDeployment } from './helpers/nats-server.ts';
import { waitFor } from './helpers/strata-agent.ts';

const TIMING = { beatMs: 100, expireMs: 600, requestTimeoutMs: 2000 };

/** What a bus's handlers were called with. */
interface Heard {
  delivered: { agent: string; command: AgentCommand; origin: string }[];
  replies: { agent: string; reply: OrderReply }[];
  events: ClusterEvent[];
  moved: { agent: string; replica: string }[];
  superseded: { agent: string; session: string }[];
}

let dir: string;
let nats: NatsDeployment;
const buses: NatsBus[] = [];

/** Starts a bus on its own connection, recording what its handlers hear. */
async function bus(prefix = 'strata'): Promise<{ bus: NatsBus; heard: Heard }> {
  const heard: Heard = { delivered: [], replies: [], events: [], moved: [], superseded: [] };
  const handlers: BusHandlers = {
    deliver: (agent, command, origin) => heard.delivered.push({ agent, command, origin }),
    reply: (agent, reply) => heard.replies.push({ agent, reply }),
    event: (event) => heard.events.push(event),
    moved: (agent, replica) => heard.moved.push({ agent, replica }),
    superseded: (agent, session) => heard.superseded.push({ agent, session }),
  };
  const created = new NatsBus(await connectNats({ servers: nats.servers, replicas: 1 }), { log: createLogger({ level: 'silent' }), prefix, timing: TIMING });
  await created.start(handlers);
  buses.push(created);
  return { bus: created, heard };
}

before(async () => {
  dir = await mkdtemp(path.join(os.tmpdir(), 'strata-bus-'));
  nats = await startNatsServer();
});

after(async () => {
  for (const b of buses) await b.close();
  await nats?.stop();
  await rm(dir, { recursive: true, force: true });
});

describe('cluster bus (NATS)', () => {
  it('shows an agent held by another replica, and forgets it when that replica stops announcing itself', async () => {
    const a = await bus('p1');
    const b = await bus('p1');
    a.bus.claim('web-1', 's1', Date.now());
    const holder = await waitFor('B to see web-1 on A', async () => b.bus.holder('web-1'), 3000, 20);
    assert.equal(holder.replica, a.bus.replica);
    assert.equal(holder.session, 's1');
    assert.equal(a.bus.holder('web-1'), undefined, 'a replica never lists itself as a remote holder');
    assert.deepEqual(b.bus.peers(), [a.bus.replica]);

    // A dies without a goodbye: its connection is cut, its beats stop.
    const started = Date.now();
    await (a.bus as unknown as { nc: { close(): Promise<void> } }).nc.close();
    await waitFor('B to forget web-1', async () => b.bus.holder('web-1') === undefined, 3000, 20);
    const took = Date.now() - started;
    assert.ok(took >= TIMING.expireMs - 150 && took < TIMING.expireMs + 1000, `expired after ${took} ms (expiry ${TIMING.expireMs} ms)`);
    assert.deepEqual(b.heard.moved, [{ agent: 'web-1', replica: a.bus.replica }]);
    assert.deepEqual(b.bus.peers(), []);
  });

  it('releases at once, and a replica that leaves cleanly takes its agents with it', async () => {
    const a = await bus('p2');
    const b = await bus('p2');
    a.bus.claim('x', 's1', Date.now());
    a.bus.claim('y', 's2', Date.now());
    await waitFor('B to see x and y', async () => b.bus.remoteCount() === 2, 3000, 20);
    a.bus.release('x', 'other-session');
    a.bus.release('x', 's1');
    await waitFor('B to see x released', async () => b.bus.holder('x') === undefined, 3000, 20);
    assert.equal(b.bus.holder('y')?.replica, a.bus.replica);
    await a.bus.close();
    await waitFor('B to drop y at once', async () => b.bus.holder('y') === undefined, TIMING.expireMs - 200, 10);
    assert.deepEqual(b.heard.moved.map((m) => m.agent).sort(), ['x', 'y']);
  });

  it('a replica that starts late learns what the others hold from their snapshots', async () => {
    const a = await bus('p3');
    const now = Date.now();
    for (let i = 0; i < 2500; i++) a.bus.claim(`agent-${i}`, `s${i}`, now);
    const b = await bus('p3');
    // 2500 claims take two snapshot pages.
    await waitFor('B to learn all 2500', async () => b.bus.remoteCount() === 2500, 5000, 20);
    assert.equal(b.bus.holder('agent-2499')?.session, 's2499');
    assert.equal(b.heard.moved.length, 0);
  });

  it('routes a command to the holding replica and the reply back to the origin', async () => {
    const a = await bus('p4');
    const b = await bus('p4');
    const order = { id: 'abc123', args: { verb: 'ping' as const }, deadline: new Date(Date.now() + 5000).toISOString() };
    a.bus.sendToAgent(b.bus.replica, 'db-1', { type: 'order', order });
    const delivered = await waitFor('B to get the order', async () => b.heard.delivered[0], 3000, 10);
    assert.deepEqual(delivered, { agent: 'db-1', command: { type: 'order', order }, origin: a.bus.replica });
    assert.equal(a.heard.delivered.length, 0);

    const progress: OrderReply = { v: 1, id: 'm1', type: 'order-progress', orderId: 'abc123', content: { line: 'hello' } };
    const result: OrderReply = { v: 1, id: 'm2', type: 'order-result', orderId: 'abc123', result: { ok: true, code: 'OK', message: 'pong', durationMs: 3 } };
    b.bus.replyToOrigin(a.bus.replica, 'db-1', progress);
    b.bus.replyToOrigin(a.bus.replica, 'db-1', result);
    await waitFor('A to get both replies', async () => a.heard.replies.length === 2, 3000, 10);
    assert.deepEqual(a.heard.replies, [{ agent: 'db-1', reply: progress }, { agent: 'db-1', reply: result }], 'replies arrive in order');
  });

  it('broadcasts changes to every other replica, never back to the sender', async () => {
    const a = await bus('p5');
    const b = await bus('p5');
    const c = await bus('p5');
    a.bus.broadcast({ type: 'revoke', name: 'gone-1' });
    a.bus.broadcast({ type: 'assignments' });
    await waitFor('B and C to hear both', async () => b.heard.events.length === 2 && c.heard.events.length === 2, 3000, 10);
    assert.deepEqual(b.heard.events, [{ type: 'revoke', name: 'gone-1' }, { type: 'assignments' }]);
    assert.deepEqual(c.heard.events, b.heard.events);
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.deepEqual(a.heard.events, []);
  });

  it('tells the replica with the older session of an agent that another replica holds a newer one', async () => {
    const a = await bus('p6');
    const b = await bus('p6');
    a.bus.claim('edge-1', 'old', 1000);
    await waitFor('B to see edge-1', async () => b.bus.holder('edge-1'), 3000, 10);
    b.bus.claim('edge-1', 'new', 2000);
    await waitFor('A to hear it is superseded', async () => a.heard.superseded.length === 1, 3000, 10);
    assert.deepEqual(a.heard.superseded, [{ agent: 'edge-1', session: 'old' }]);
    assert.deepEqual(b.heard.superseded, []);
  });

  it('closes promptly while NATS is away', async () => {
    const own = await startNatsServer();
    const created = new NatsBus(await connectNats({ servers: own.servers, replicas: 1 }), { log: createLogger({ level: 'silent' }), timing: TIMING });
    await created.start({ deliver() {}, reply() {}, event() {}, moved() {}, superseded() {} });
    created.claim('x', 's', Date.now());
    await own.stop();
    const started = Date.now();
    await created.close();
    await created.close();
    assert.ok(Date.now() - started < 4000, `close took ${Date.now() - started} ms`);
  });

  it('ignores messages that are not valid bus messages', async () => {
    const a = await bus('p7');
    const nc = await connectNats({ servers: nats.servers, replicas: 1 });
    nc.publish('p7.cluster.event', 'not json');
    nc.publish('p7.cluster.event', JSON.stringify({ v: 99, replica: 'aaaaaaaaaaaa', event: { type: 'assignments' } }));
    nc.publish(`p7.cluster.to.${a.bus.replica}`, JSON.stringify({ v: 1, kind: 'command', origin: 'bad', agent: 'x', command: { type: 'rm -rf' } }));
    nc.publish('p7.cluster.event', JSON.stringify({ v: 1, replica: 'bbbbbbbbbbbb', event: { type: 'revoke', name: 'ok-1' } }));
    await waitFor('the valid event', async () => a.heard.events.length === 1, 3000, 10);
    assert.deepEqual(a.heard.events, [{ type: 'revoke', name: 'ok-1' }]);
    assert.deepEqual(a.heard.delivered, []);
    await nc.close();
  });
});
