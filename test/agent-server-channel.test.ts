/** The agent channel over a real socket: desired on connect and on change, heartbeats, bad messages, replacement, revocation, shutdown. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { WebSocket } from 'ws';
import type { ChannelMessage } from '../src/protocol/agent.ts';
import type { TestApp } from './helpers/app.ts';
import { asAgent, channelApp, configure, enrolled, fakeAgent, version, type FakeAgent } from './helpers/fake-agent.ts';

const PATH = '/v1/agent/channel';

/** A connected channel with a queue of received messages. */
interface Client {
  socket: WebSocket;
  next(type: ChannelMessage['type'], timeoutMs?: number): Promise<ChannelMessage>;
  closed: Promise<{ code: number; reason: string }>;
}

/** Listens on a free loopback port and returns the ws:// base URL. */
async function listen(env: TestApp): Promise<string> {
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const address = env.app.server.address();
  assert.ok(address && typeof address === 'object');
  return `ws://127.0.0.1:${address.port}`;
}

/** Opens the channel as `agent` and queues what arrives. */
async function connect(base: string, agent: FakeAgent): Promise<Client> {
  const socket = new WebSocket(base + PATH, { headers: { authorization: agent.authorization('GET', PATH) } });
  const queue: ChannelMessage[] = [];
  let waiter: (() => void) | undefined;
  socket.on('message', (data) => {
    queue.push(JSON.parse(data.toString()) as ChannelMessage);
    waiter?.();
  });
  const closed = once(socket, 'close').then(([code, reason]) => ({ code: code as number, reason: String(reason) }));
  await once(socket, 'open');
  return {
    socket, closed,
    async next(type, timeoutMs = 2000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const index = queue.findIndex((m) => m.type === type);
        if (index >= 0) return queue.splice(index, 1)[0]!;
        const left = deadline - Date.now();
        if (left <= 0) throw new Error(`no ${type} message within ${timeoutMs}ms; got ${JSON.stringify(queue.map((m) => m.type))}`);
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          waiter = resolve;
          timer = setTimeout(resolve, left);
        });
        clearTimeout(timer);
      }
    },
  };
}

/** Names and revisions in a desired message. */
function revisions(message: ChannelMessage): [string, number][] {
  assert.equal(message.type, 'desired');
  return message.type === 'desired' ? message.state.configurations.map((c) => [c.name, c.revision]) : [];
}

describe('agent channel', () => {
  it('pushes desired on connect and within 1 s of a change, answers pings and survives bad messages', async (t) => {
    const env = await channelApp(t, { pingIntervalMs: 60_000, silenceTimeoutMs: 120_000 });
    await version(env, 'app', '1');
    await version(env, 'app', '2');
    await version(env, 'nginx', '1');
    await configure(env, 'site', [['app', '1']]);
    await configure(env, 'web', [['nginx', '1']]);
    const agent = fakeAgent('web-1');
    await enrolled(env, agent, { labels: { role: 'web' }, tracks: ['site'] });
    const client = await connect(await listen(env), agent);
    assert.deepEqual(revisions(await client.next('desired')), [['site', 1]]);

    const started = Date.now();
    const changed = await env.app.inject({ method: 'PATCH', url: '/v1/configurations/site/layers/app', headers: env.auth.deployer, payload: { version: '2' } });
    assert.equal(changed.statusCode, 200, changed.body);
    assert.deepEqual(revisions(await client.next('desired', 1000)), [['site', 2]]);
    assert.ok(Date.now() - started < 1000);

    await env.app.inject({ method: 'PUT', url: '/v1/assignments', headers: env.auth.deployer, payload: { configuration: 'web', selector: 'role=web' } });
    assert.deepEqual(revisions(await client.next('desired', 1000)), [['site', 2], ['web', 1]]);
    await configure(env, 'unrelated', [['nginx', '1']]);

    client.socket.send(JSON.stringify({ v: 1, id: 'p1', type: 'ping', at: new Date().toISOString() }));
    assert.equal((await client.next('pong')).id, 'p1');
    for (const bad of ['not json', JSON.stringify({ v: 1, id: 'x1', type: 'nope' }), JSON.stringify({ v: 2, id: 'x2', type: 'ping', at: 'now' })]) {
      client.socket.send(bad);
      const error = await client.next('error');
      assert.ok(error.type === 'error' && error.code === 'BAD_REQUEST', JSON.stringify(error));
    }
    client.socket.send(JSON.stringify({ v: 1, id: 's1', type: 'status', report: { configurations: [{ configuration: 'site', phase: 'deployed', currentRevision: 2, at: new Date().toISOString() }] } }));
    client.socket.send(JSON.stringify({ v: 1, id: 'p2', type: 'ping', at: new Date().toISOString() }));
    assert.equal((await client.next('pong')).id, 'p2', 'the channel still works after bad messages');
    const listed = (await env.app.inject({ method: 'GET', url: '/v1/agents', headers: env.auth.viewer })).json().agents[0];
    assert.equal(listed.online, true);
    assert.deepEqual(listed.configurations.map((c: { configuration: string; phase: string; upToDate: boolean }) => [c.configuration, c.phase, c.upToDate]), [['site', 'deployed', true], ['web', 'unknown', false]]);
    await assert.rejects(client.next('desired', 200), /no desired/, 'an unrelated change sends nothing');
    client.socket.close();
  });

  it('refuses an unsigned upgrade, replaces an older connection, and closes at once on revoke', async (t) => {
    const env = await channelApp(t, { pingIntervalMs: 60_000, silenceTimeoutMs: 120_000 });
    const agent = fakeAgent('web-1');
    await enrolled(env, agent);
    const base = await listen(env);
    const refused = new WebSocket(base + PATH);
    refused.on('error', () => undefined);
    const [, response] = await once(refused, 'unexpected-response');
    assert.equal(response.statusCode, 401);
    refused.terminate();

    // A captured upgrade header opens no second channel: the upgrade is claimed like a write.
    const header = agent.authorization('GET', PATH);
    const original = new WebSocket(base + PATH, { headers: { authorization: header } });
    await once(original, 'open');
    const replayed = new WebSocket(base + PATH, { headers: { authorization: header } });
    replayed.on('error', () => undefined);
    const outcome = await Promise.race([
      once(replayed, 'unexpected-response').then(([, response]) => (response as { statusCode?: number }).statusCode),
      once(replayed, 'open').then(() => 'opened'),
    ]);
    assert.equal(outcome, 401, 'the replayed upgrade is refused');
    replayed.terminate();
    original.terminate();

    const first = await connect(base, agent);
    await first.next('desired');
    const second = await connect(base, agent);
    await second.next('desired');
    assert.equal((await first.closed).code, 4000);
    const started = Date.now();
    assert.equal((await env.app.inject({ method: 'POST', url: '/v1/agents/web-1/revoke', headers: env.auth.admin })).statusCode, 200);
    assert.deepEqual(await second.closed, { code: 4001, reason: 'agent revoked' });
    assert.ok(Date.now() - started < 1000);
    assert.equal((await asAgent(env, agent, 'GET', '/v1/agent/desired')).statusCode, 401);
  });

  it('closes a channel whose agent was revoked between the upgrade and the session starting', async (t) => {
    const env = await channelApp(t, { pingIntervalMs: 60_000, silenceTimeoutMs: 120_000 });
    const agent = fakeAgent('web-1');
    await enrolled(env, agent);
    const base = await listen(env);
    // The revoke lands in the store right after the upgrade read the (not yet revoked) record,
    // without the route's broadcast: nothing but the session's own check can close it.
    const getAgent = env.store.getAgent.bind(env.store);
    let revoked = false;
    env.store.getAgent = async (name) => {
      const record = await getAgent(name);
      if (!revoked && name === 'web-1' && record) {
        revoked = true;
        const { revision, ...fields } = record;
        await env.store.putAgent({ ...fields, revokedAt: new Date().toISOString() }, revision);
      }
      return record;
    };
    const client = await connect(base, agent);
    assert.deepEqual(await client.closed, { code: 4001, reason: 'agent revoked' });
    await assert.rejects(client.next('desired', 100), /no desired message/, 'a revoked agent is sent no desired state');
  });

  it('pings, closes silent sessions, and closes every socket promptly on app.close()', async (t) => {
    const env = await channelApp(t, { pingIntervalMs: 100, silenceTimeoutMs: 350 });
    const [quiet, chatty] = [fakeAgent('quiet'), fakeAgent('chatty')];
    await enrolled(env, quiet);
    await enrolled(env, chatty);
    const base = await listen(env);
    const silent = await connect(base, quiet);
    const talker = await connect(base, chatty);
    const ping = await talker.next('ping', 1000);
    talker.socket.send(JSON.stringify({ v: 1, id: ping.id, type: 'pong', at: new Date().toISOString() }));
    const keepTalking = setInterval(() => talker.socket.send(JSON.stringify({ v: 1, id: 'k', type: 'pong', at: new Date().toISOString() })), 100);
    t.after(() => clearInterval(keepTalking));
    assert.equal((await silent.closed).code, 4002);
    assert.equal(talker.socket.readyState, WebSocket.OPEN, 'a session that answers stays open');
    clearInterval(keepTalking);
    const started = Date.now();
    await env.app.close();
    assert.equal((await talker.closed).code, 1001);
    assert.ok(Date.now() - started < 1500, `app.close took ${Date.now() - started}ms`);
  });
});
