/** Fleet orders through the server with fake agents on real sockets: fan-out, offline, timeout, batch, streaming, targeting, roles, audit. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createInterface } from 'node:readline';
import { createHttpClient } from '../src/lib/http-client.ts';
import type { OrderEvent } from '../src/protocol/order-api.ts';
import type { TestApp } from './helpers/app.ts';
import { channelApp, enrolled, fakeAgent } from './helpers/fake-agent.ts';
import { answerOk, orderAgent, sleep, type Behaviour, type OrderAgent } from './helpers/order-agent.ts';

const TIMING = { pingIntervalMs: 60_000, silenceTimeoutMs: 120_000 };

/** A listening app with enrolled agents; `online` ones connect their channel with `behaviour`. */
async function fleet(t: { after: (fn: () => Promise<void>) => void }, agents: { name: string; labels?: Record<string, string>; online?: boolean; behaviour?: Behaviour }[]) {
  const env = await channelApp(t, TIMING);
  await env.app.listen({ port: 0, host: '127.0.0.1' });
  const address = env.app.server.address();
  assert.ok(address && typeof address === 'object');
  const base = `127.0.0.1:${address.port}`;
  const connected: Record<string, OrderAgent> = {};
  for (const spec of agents) {
    const identity = fakeAgent(spec.name);
    await enrolled(env, identity, { labels: spec.labels ?? {} });
    if (spec.online !== false) connected[spec.name] = await orderAgent(`ws://${base}`, identity, spec.behaviour ?? answerOk);
  }
  t.after(async () => {
    for (const agent of Object.values(connected)) await agent.close();
  });
  const client = createHttpClient({ baseUrl: `http://${base}` });
  t.after(async () => client.close());
  return { env, connected, client };
}

/** Sends an order over a real socket and collects its NDJSON events with their arrival time (ms since sending). */
async function order(client: ReturnType<typeof createHttpClient>, env: TestApp, body: Record<string, unknown>, role: 'deployer' | 'viewer' | 'admin' = 'deployer') {
  const started = Date.now();
  const response = await client.request({ method: 'POST', path: '/v1/orders', headers: env.auth[role], json: body });
  if (response.status !== 200) return { status: response.status, error: await response.json<{ code: string; message: string }>(), events: [] as (OrderEvent & { at: number })[] };
  assert.match(String(response.headers['content-type']), /^application\/x-ndjson/);
  const events: (OrderEvent & { at: number })[] = [];
  for await (const line of createInterface({ input: response.body })) events.push({ ...(JSON.parse(line) as OrderEvent), at: Date.now() - started });
  return { status: 200, error: undefined, events };
}

/** The result events by host. */
function resultsOf(events: OrderEvent[]) {
  return Object.fromEntries(events.flatMap((e) => (e.type === 'result' ? [[e.host, e.result]] : [])));
}

describe('fleet orders (server)', () => {
  it('fans out to every online agent and reports an offline one at once', async (t) => {
    const slow: Behaviour = async (o) => (await sleep(300), answerOk(o));
    const { env, client } = await fleet(t, [{ name: 'a', behaviour: slow }, { name: 'b', behaviour: slow }, { name: 'c', behaviour: slow }, { name: 'd', online: false }]);
    const { status, events } = await order(client, env, { target: { all: true }, args: { verb: 'exec', name: 'uptime', args: ['-p', 'a b; rm -rf /'] } });
    assert.equal(status, 200);
    assert.deepEqual(events[0], { type: 'order', id: (events[0] as { id: string }).id, verb: 'exec', hosts: ['a', 'b', 'c', 'd'], at: events[0]!.at });
    const offline = events.find((e) => e.type === 'result' && e.host === 'd')!;
    assert.ok(offline.at < 250, `OFFLINE should come at once, came after ${offline.at}ms`);
    assert.equal(events[1], offline, 'the offline host is reported before any answer');
    const results = resultsOf(events);
    assert.deepEqual(Object.keys(results).sort(), ['a', 'b', 'c', 'd']);
    assert.deepEqual(results['d'], { ok: false, code: 'OFFLINE', message: 'the agent is not connected', durationMs: 0 });
    for (const host of ['a', 'b', 'c']) {
      assert.equal(results[host]!.ok, true);
      assert.deepEqual((results[host]!.content as { echo: unknown }).echo, { verb: 'exec', name: 'uptime', args: ['-p', 'a b; rm -rf /'] }, 'exec arguments travel as an array');
    }
    assert.deepEqual(events.at(-1)!.type === 'done' && events.at(-1), { type: 'done', summary: { ok: 3, failed: 1, offline: 1, timedOut: 0 }, at: events.at(-1)!.at });
  });

  it('streams results as they arrive, before done', async (t) => {
    const { env, client } = await fleet(t, [{ name: 'fast' }, { name: 'slow', behaviour: async (o) => (await sleep(600), answerOk(o)) }]);
    const { events } = await order(client, env, { target: { hosts: ['fast', 'slow'] }, args: { verb: 'ping' } });
    const fast = events.find((e) => e.type === 'result' && e.host === 'fast')!;
    const done = events.find((e) => e.type === 'done')!;
    assert.ok(fast.at < 400, `fast result after ${fast.at}ms`);
    assert.ok(done.at >= 550, `done after ${done.at}ms`);
    const rtt = (resultsOf(events)['slow']!.content as { rttMs: number }).rttMs;
    assert.ok(rtt >= 550 && rtt < 5000, `the server measures the ping's round trip: ${rtt}`);
  });

  it('times out silent hosts and cancels them on the agent', async (t) => {
    const { env, client, connected } = await fleet(t, [{ name: 'ok' }, { name: 'mute', behaviour: () => undefined }]);
    const { events } = await order(client, env, { target: { all: true }, args: { verb: 'sync', group: 'www', mode: 'run' }, timeoutMs: 300 });
    const results = resultsOf(events);
    assert.equal(results['ok']!.ok, true);
    assert.equal(results['mute']!.code, 'TIMEOUT');
    assert.ok(results['mute']!.durationMs >= 250);
    const cancel = await connected['mute']!.waitFor('order-cancel');
    assert.equal(cancel.type === 'order-cancel' && cancel.orderId, (events[0] as { id: string }).id);
    assert.equal(connected['ok']!.received.some((m) => m.type === 'order-cancel'), false);
    const order0 = connected['mute']!.received.find((m) => m.type === 'order')!;
    assert.ok(order0.type === 'order' && Date.parse(order0.order.deadline) > Date.now() - 5000, 'the agent is told the deadline');
    assert.deepEqual((events.at(-1) as { summary: unknown }).summary, { ok: 1, failed: 1, offline: 0, timedOut: 1 });
  });

  it('never has more than `batch` hosts in flight', async (t) => {
    let inFlight = 0;
    let most = 0;
    const counted: Behaviour = async (o) => {
      most = Math.max(most, ++inFlight);
      await sleep(60);
      inFlight -= 1;
      return answerOk(o);
    };
    const { env, client } = await fleet(t, ['a', 'b', 'c', 'd'].map((name) => ({ name, behaviour: counted })));
    const { events } = await order(client, env, { target: { all: true }, args: { verb: 'ping' }, batch: 1 });
    assert.equal(most, 1);
    assert.deepEqual((events.at(-1) as { summary: unknown }).summary, { ok: 4, failed: 0, offline: 0, timedOut: 0 });
    most = 0;
    await order(client, env, { target: { all: true }, args: { verb: 'ping' }, batch: 2 });
    assert.equal(most, 2);
  });

  it('forwards progress lines and cancels outstanding hosts when the client goes away', async (t) => {
    const follow: Behaviour = async (_o, progress) => {
      for (let i = 0; i < 3; i++) progress({ lines: [`line ${i}`] });
      return undefined;
    };
    const { env, client, connected } = await fleet(t, [{ name: 'a', behaviour: follow }]);
    const abort = new AbortController();
    const response = await client.request({ method: 'POST', path: '/v1/orders', headers: env.auth.deployer, json: { target: { hosts: ['a'] }, args: { verb: 'logs', source: 'agent', follow: true } }, signal: abort.signal });
    const lines: OrderEvent[] = [];
    const reader = createInterface({ input: response.body });
    for await (const line of reader) {
      lines.push(JSON.parse(line) as OrderEvent);
      if (lines.length === 4) break;
    }
    assert.deepEqual(lines.slice(1).map((e) => e.type === 'progress' && e.content), [{ lines: ['line 0'] }, { lines: ['line 1'] }, { lines: ['line 2'] }]);
    abort.abort();
    response.body.destroy();
    await connected['a']!.waitFor('order-cancel');
    const id = (lines[0] as { id: string }).id;
    for (let i = 0; i < 100 && !(await env.store.getOrder(id))?.finishedAt; i++) await sleep(20);
    assert.equal((await env.store.getOrder(id))!.results!['a']!.code, 'CANCELLED');
  });

  it('targets by hosts, group and selector, excludes revoked agents, and refuses bad targets', async (t) => {
    const { env, client } = await fleet(t, [
      { name: 'web-1', labels: { role: 'web', region: 'us', tier: 'a' } },
      { name: 'web-2', labels: { role: 'web', region: 'eu', tier: 'b' } },
      { name: 'db-1', labels: { role: 'db', region: 'us' } },
      { name: 'old', labels: { role: 'web' } },
    ]);
    assert.equal((await env.app.inject({ method: 'POST', url: '/v1/agents/old/revoke', headers: env.auth.admin })).statusCode, 200);
    const hostsOf = async (target: Record<string, unknown>) => {
      const { events, error } = await order(client, env, { target, args: { verb: 'ping' } });
      return error ?? (events[0] as { hosts: string[] }).hosts;
    };
    assert.deepEqual(await hostsOf({ selector: 'role=web,region!=eu,tier in (a,b)' }), ['web-1']);
    assert.deepEqual(await hostsOf({ selector: 'role=web' }), ['web-1', 'web-2']);
    assert.deepEqual(await hostsOf({ all: true }), ['db-1', 'web-1', 'web-2']);
    assert.deepEqual(await hostsOf({ hosts: ['db-1', 'web-2', 'db-1'] }), ['db-1', 'web-2']);
    const put = await env.app.inject({ method: 'PUT', url: '/v1/groups/eu', headers: env.auth.deployer, payload: { selector: 'region = eu' } });
    assert.equal(put.statusCode, 200, put.body);
    assert.equal(put.json().selector, 'region=eu');
    assert.deepEqual(await hostsOf({ group: 'eu' }), ['web-2']);
    assert.equal((await env.app.inject({ method: 'PUT', url: '/v1/groups/pair', headers: env.auth.deployer, payload: { hosts: ['web-1', 'db-1'] } })).statusCode, 200);
    assert.deepEqual(await hostsOf({ group: 'pair' }), ['db-1', 'web-1']);
    const listed = await env.app.inject({ method: 'GET', url: '/v1/agents?selector=role%3Dweb', headers: env.auth.viewer });
    assert.deepEqual(listed.json().agents.map((a: { name: string }) => a.name), ['web-1', 'web-2']);
    const byGroup = await env.app.inject({ method: 'GET', url: '/v1/agents?group=pair', headers: env.auth.viewer });
    assert.deepEqual(byGroup.json().agents.map((a: { name: string }) => a.name), ['db-1', 'web-1']);

    refusedWith(await hostsOf({ selector: 'role in (web' }), 'INVALID_SELECTOR', /^invalid selector "role in \(web": expected "," or "\)"/);
    refusedWith(await hostsOf({}), 'NO_TARGET', /^no target given/);
    refusedWith(await hostsOf({ all: true, selector: 'role=web' }), 'NO_TARGET', /^selector and all given together/);
    refusedWith(await hostsOf({ hosts: ['web-1', 'nope'] }), 'AGENT_NOT_FOUND', /^no enrolled agent named nope$/);
    refusedWith(await hostsOf({ group: 'nope' }), 'GROUP_NOT_FOUND', /^group "nope" not found$/);
    refusedWith(await hostsOf({ selector: 'role=cache' }), 'NO_TARGET', /^the target picks no agent$/);
    refusedWith(await hostsOf({ hosts: ['old'] }), 'NO_TARGET', /picks no agent/);
    const badGroup = await env.app.inject({ method: 'PUT', url: '/v1/groups/x', headers: env.auth.deployer, payload: { hosts: ['a'], selector: 'a=b' } });
    assert.equal(badGroup.json().code, 'BAD_REQUEST');
    assert.equal((await env.app.inject({ method: 'DELETE', url: '/v1/groups/eu', headers: env.auth.deployer })).statusCode, 204);
    assert.equal((await env.app.inject({ method: 'DELETE', url: '/v1/groups/eu', headers: env.auth.deployer })).json().code, 'GROUP_NOT_FOUND');
  });

  it('lets only deployers and admins send orders; viewers read them; every order is audited', async (t) => {
    const { env, client } = await fleet(t, [{ name: 'a' }, { name: 'b', online: false }]);
    const refused = await order(client, env, { target: { all: true }, args: { verb: 'ping' } }, 'viewer');
    assert.equal(refused.status, 403);
    assert.equal(refused.error!.code, 'FORBIDDEN');
    const { events } = await order(client, env, { target: { all: true }, args: { verb: 'exec', name: 'df', args: ['-h'] } }, 'admin');
    const id = (events[0] as { id: string }).id;
    const listed = await env.app.inject({ method: 'GET', url: '/v1/orders', headers: env.auth.viewer });
    assert.equal(listed.statusCode, 200, listed.body);
    assert.deepEqual(listed.json().orders.map((o: { id: string; summary: unknown; results?: unknown }) => [o.id, o.summary, o.results]), [[id, { ok: 1, failed: 1, offline: 1, timedOut: 0 }, undefined]]);
    const shown = await env.app.inject({ method: 'GET', url: `/v1/orders/${id}`, headers: env.auth.viewer });
    assert.equal(shown.statusCode, 200, shown.body);
    const view = shown.json();
    assert.deepEqual([view.actor.startsWith('token:'), view.args, view.hosts, view.results.a.ok, view.results.b.code], [true, { verb: 'exec', name: 'df', args: ['-h'] }, ['a', 'b'], true, 'OFFLINE']);
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/orders/nope', headers: env.auth.viewer })).json().code, 'ORDER_NOT_FOUND');
    const audit = (await env.store.listAudit({ limit: 100 })).filter((e) => e.action.startsWith('order.'));
    assert.deepEqual(audit.map((e) => [e.action, e.target, e.result]), [['order.exec', id, 'failed']]);
    assert.deepEqual(audit[0]!.details, { args: { verb: 'exec', name: 'df', args: ['-h'] }, target: { all: true }, hostCount: 2, hosts: ['a', 'b'], summary: { ok: 1, failed: 1, offline: 1, timedOut: 0 } });
    await order(client, env, { target: { group: 'nope' }, args: { verb: 'ping' } });
    const refusal = (await env.store.listAudit({ limit: 1, newest: true }))[0]!;
    assert.deepEqual([refusal.action, refusal.result], ['order.ping', 'GROUP_NOT_FOUND']);
  });
});

/** Asserts an error answer with `code` and a message matching `pattern`. */
function refusedWith(value: unknown, code: string, pattern: RegExp): void {
  const error = value as { code: string; message: string };
  assert.equal(error.code, code, JSON.stringify(value));
  assert.match(error.message, pattern);
}
