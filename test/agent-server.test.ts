/** The agent side of the API through inject(): enrollment, signed requests, desired state, status, blobs, assignments, revocation. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, generateKeyPairSync, sign } from 'node:crypto';
import { AGENT_BODY_HASH_HEADER, agentSigningInputV1 } from '../src/protocol/agent.ts';
import { testApp } from './helpers/app.ts';
import { asAgent, configure, enroll, enrolled, fakeAgent, joinToken, version } from './helpers/fake-agent.ts';

describe('agent enrollment', () => {
  it('enrolls with a join token, is idempotent for the same key and refuses another key', async (t) => {
    const env = await testApp(t);
    const agent = fakeAgent('web-1');
    const token = await joinToken(env);
    const first = await enroll(env, agent, token.text, { labels: { role: 'web' }, tracks: ['site'] });
    assert.equal(first.statusCode, 201, first.body);
    assert.equal(first.json().name, 'web-1');
    const again = await enroll(env, agent, token.text, { labels: { role: 'api' } });
    assert.equal(again.statusCode, 200, again.body);
    assert.equal(again.json().enrolledAt, first.json().enrolledAt);
    assert.deepEqual((await env.store.getAgent('web-1'))?.labels, { role: 'api' });
    const impostor = await enroll(env, fakeAgent('web-1'), token.text);
    assert.equal(impostor.statusCode, 409);
    assert.equal(impostor.json().code, 'AGENT_EXISTS');
    const audit = await env.store.listAudit({ limit: 10 });
    assert.deepEqual(audit.map((e) => [e.action, e.target, e.result, e.actor]), [
      ['agent.enroll', 'web-1', 'ok', `join-token:${token.id}(rack)`],
      ['agent.enroll', 'web-1', 'ok', `join-token:${token.id}(rack)`],
      ['agent.enroll', 'web-1', 'AGENT_EXISTS', `join-token:${token.id}(rack)`],
    ]);
  });

  it('refuses bad, revoked and expired join tokens with UNAUTHENTICATED', async (t) => {
    const env = await testApp(t);
    const agent = fakeAgent('web-1');
    const good = await joinToken(env);
    const cases: [string, RegExp][] = [
      ['nonsense', /malformed join token/],
      [good.text.slice(0, -4) + 'AAAA', /invalid join token/],
      [(await joinToken(env, { revoked: true })).text, /join token [0-9a-f]{12} is revoked/],
      [(await joinToken(env, { expired: true })).text, /join token [0-9a-f]{12} is expired/],
    ];
    for (const [token, message] of cases) {
      const response = await enroll(env, agent, token);
      assert.equal(response.statusCode, 401, token);
      assert.equal(response.json().code, 'UNAUTHENTICATED');
      assert.match(response.json().message, message);
    }
    assert.equal(await env.store.getAgent('web-1'), undefined);
    assert.equal((await env.store.listAudit({ limit: 10 })).filter((e) => e.action === 'auth.failed').length, 4);
  });

  it('throttles repeated failures of one join token from an address, not the other tokens', async (t) => {
    const env = await testApp(t);
    const real = (await joinToken(env)).text;
    const guessed = real.replace(/_[A-Za-z0-9_-]{32}$/, `_${'x'.repeat(32)}`);
    for (let i = 0; i < 5; i++) assert.equal((await enroll(env, fakeAgent('a'), guessed)).statusCode, 401);
    const blocked = await enroll(env, fakeAgent('a'), real);
    assert.equal(blocked.statusCode, 429);
    assert.equal(blocked.json().code, 'TOO_MANY_AUTH_FAILURES');
    const other = await enroll(env, fakeAgent('b'), (await joinToken(env)).text);
    assert.ok(other.statusCode < 300, `another join token from the same address still enrolls (${other.statusCode})`);
  });

  it('creates a join token with a lifetime, and refuses one longer than ten years with 400', async (t) => {
    const env = await testApp(t);
    const post = (ttlMs: number) => env.app.inject({ method: 'POST', url: '/v1/join-tokens', headers: env.auth.admin, payload: { name: 'rack', ttlMs } });
    const day = await post(24 * 3600 * 1000);
    assert.equal(day.statusCode, 201, day.body);
    const tooLong = await post(9e15);
    assert.equal(tooLong.statusCode, 400, tooLong.body);
    assert.equal(tooLong.json().code, 'BAD_REQUEST');
  });

  it('validates names, keys and the CA the token was made for', async (t) => {
    const env = await testApp(t);
    const token = (await joinToken(env)).text;
    const badName = await enroll(env, fakeAgent('a b'), token);
    assert.equal(badName.json().code, 'INVALID_NAME');
    const badTrack = await enroll(env, fakeAgent('a'), token, { tracks: ['x/y'] });
    assert.equal(badTrack.json().code, 'INVALID_NAME');
    const rsa = generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ format: 'pem', type: 'spki' }).toString();
    const badKey = await enroll(env, fakeAgent('a'), token, { publicKey: rsa });
    assert.equal(badKey.statusCode, 400);
    assert.match(badKey.json().message, /Ed25519/);
    const otherCa = await enroll(env, fakeAgent('a'), (await joinToken(env, { ca: 'b'.repeat(64) })).text);
    assert.equal(otherCa.statusCode, 401);
    assert.match(otherCa.json().message, /another server CA/);
  });

  it("lets a revoked agent's name enroll again with a new key, never with the revoked one", async (t) => {
    const env = await testApp(t);
    const old = fakeAgent('web-1');
    await enrolled(env, old);
    assert.equal((await env.app.inject({ method: 'POST', url: '/v1/agents/web-1/revoke', headers: env.auth.admin })).statusCode, 200);
    const sameKey = await enroll(env, old, (await joinToken(env)).text);
    assert.equal(sameKey.statusCode, 403);
    assert.match(sameKey.json().message, /was revoked with this key; enroll with a new key/);
    assert.equal((await asAgent(env, old, 'GET', '/v1/agent/desired')).statusCode, 401, 'the refused enrollment changed nothing');
    const fresh = fakeAgent('web-1');
    await enrolled(env, fresh);
    assert.equal((await asAgent(env, fresh, 'GET', '/v1/agent/desired')).statusCode, 200);
    const refused = await asAgent(env, old, 'GET', '/v1/agent/desired');
    assert.equal(refused.statusCode, 401);
    assert.match(refused.json().message, /invalid signature/);
  });
});

describe('agent request signatures', () => {
  it('refuses a wrong key, a stale timestamp, another path, a bearer token and a revoked agent', async (t) => {
    const env = await testApp(t);
    const agent = fakeAgent('web-1');
    await enrolled(env, agent);
    const get = (authorization: string, url = '/v1/agent/desired') => env.app.inject({ method: 'GET', url, headers: { authorization } });
    assert.equal((await get(agent.authorization('GET', '/v1/agent/desired'))).statusCode, 200);
    const cases: [string, RegExp][] = [
      [fakeAgent('web-1').authorization('GET', '/v1/agent/desired'), /invalid signature for agent "web-1"/],
      [agent.authorization('GET', '/v1/agent/desired', Date.now() - 10 * 60_000), /timestamp is -600s from the server's clock/],
      [agent.authorization('GET', '/v1/agent/desired?x=1'), /invalid signature/],
      [env.auth.viewer.authorization!, /malformed agent authorization/],
    ];
    for (const [authorization, message] of cases) {
      const response = await get(authorization);
      assert.equal(response.statusCode, 401);
      assert.match(response.json().message, message);
    }
    await env.app.inject({ method: 'POST', url: '/v1/agents/web-1/revoke', headers: env.auth.admin });
    const revoked = await asAgent(env, agent, 'GET', '/v1/agent/desired');
    assert.equal(revoked.statusCode, 401);
    assert.equal(revoked.json().message, 'agent "web-1" is revoked');
  });
});

describe('desired state, status and blobs', () => {
  it('combines tracks and assignments, and follows assignment changes', async (t) => {
    const env = await testApp(t);
    await version(env, 'app', '1');
    await version(env, 'nginx', '1');
    await configure(env, 'site', [['app', '1']]);
    await configure(env, 'web', [['nginx', '1']]);
    const agent = fakeAgent('web-1');
    await enrolled(env, agent, { labels: { role: 'web', region: 'us' }, tracks: ['site', 'ghost'] });
    const desired = async () => (await asAgent(env, agent, 'GET', '/v1/agent/desired')).json();
    assert.deepEqual((await desired()).configurations.map((c: { name: string }) => c.name), ['site']);
    const assign = (method: 'PUT' | 'DELETE', selector: string, configuration = 'web', role: 'deployer' | 'viewer' = 'deployer') =>
      env.app.inject({ method, url: '/v1/assignments', headers: env.auth[role], payload: { configuration, selector } });
    assert.equal((await assign('PUT', 'role==web,region!=eu')).json().selector, 'region!=eu,role=web');
    const state = await desired();
    assert.equal(state.agent, 'web-1');
    assert.deepEqual(state.configurations.map((c: { name: string; revision: number }) => [c.name, c.revision]), [['site', 1], ['web', 1]]);
    assert.deepEqual(state.missing, ['ghost']);
    assert.ok(state.seq >= state.configurations[1].seq);
    assert.equal((await assign('PUT', 'role=web', 'web', 'viewer')).statusCode, 403);
    const bad = await assign('PUT', 'role=web,');
    assert.equal(bad.json().code, 'INVALID_SELECTOR');
    assert.match(bad.json().message, /expected a label key after ",", found the end at position 10/);
    assert.equal((await assign('PUT', 'role=web', 'nope')).json().code, 'CONFIGURATION_NOT_FOUND');
    const listed = await env.app.inject({ method: 'GET', url: '/v1/assignments', headers: env.auth.viewer });
    assert.deepEqual(listed.json().assignments.map((a: { selector: string }) => a.selector), ['region!=eu,role=web']);
    assert.equal((await assign('DELETE', 'region!=eu,role==web')).statusCode, 204);
    assert.equal((await assign('DELETE', 'role=web')).json().code, 'ASSIGNMENT_NOT_FOUND');
    assert.deepEqual((await desired()).configurations.map((c: { name: string }) => c.name), ['site']);
  });

  it('stores status reports and shows them per agent and per configuration', async (t) => {
    const env = await testApp(t);
    await version(env, 'app', '1');
    const site = await configure(env, 'site', [['app', '1']]);
    const [good, bad] = [fakeAgent('web-1'), fakeAgent('web-2')];
    await enrolled(env, good, { tracks: ['site'] });
    await enrolled(env, bad, { labels: { role: 'web' } });
    await env.app.inject({ method: 'PUT', url: '/v1/assignments', headers: env.auth.deployer, payload: { configuration: 'site', selector: 'role=web' } });
    const at = new Date().toISOString();
    const ok = await asAgent(env, good, 'POST', '/v1/agent/status', { labels: { role: 'db' }, configurations: [{ configuration: 'site', phase: 'deployed', currentRevision: 1, currentId: site.id, at }] });
    assert.equal(ok.statusCode, 204, ok.body);
    const failed = { configuration: 'site', phase: 'failed', desiredRevision: 1, error: { code: 'HOOK_FAILED', message: 'hook exited with 3' }, hookExitCode: 3, hookOutput: 'boom', at };
    assert.equal((await asAgent(env, bad, 'POST', '/v1/agent/status', { configurations: [failed] })).statusCode, 204);
    assert.equal((await asAgent(env, bad, 'POST', '/v1/agent/status', { configurations: [{ configuration: 'site', phase: 'exploded', at }] })).json().code, 'BAD_REQUEST');
    assert.equal((await asAgent(env, bad, 'POST', '/v1/agent/status', { tracks: ['x/y'], configurations: [] })).json().code, 'INVALID_NAME', 'tracks are checked as at enrollment');
    const list = (await env.app.inject({ method: 'GET', url: '/v1/agents', headers: env.auth.viewer })).json().agents;
    assert.deepEqual(list.map((a: { name: string; labels: object; online: boolean }) => [a.name, a.labels, a.online]), [['web-1', { role: 'db' }, false], ['web-2', { role: 'web' }, false]]);
    assert.deepEqual(list[0].configurations[0], { configuration: 'site', revision: 1, id: site.id, phase: 'deployed', upToDate: true, currentRevision: 1, currentId: site.id, at });
    assert.ok(list[0].lastSeen);
    const status = (await env.app.inject({ method: 'GET', url: '/v1/configurations/site/status', headers: env.auth.viewer })).json();
    assert.deepEqual([status.agents, status.upToDate, status.failed, status.revision], [2, 1, 1, 1]);
    assert.deepEqual(status.rows[1].error, { code: 'HOOK_FAILED', message: 'hook exited with 3' });
    const shown = (await env.app.inject({ method: 'GET', url: '/v1/agents/web-2', headers: env.auth.viewer })).json();
    assert.deepEqual([shown.tracks, shown.assigned, shown.configurations[0].hookOutput], [[], ['site'], 'boom']);
    assert.match(shown.keyFingerprint, /^[0-9a-f]{64}$/);
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/agents/nope', headers: env.auth.viewer })).json().code, 'AGENT_NOT_FOUND');
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/configurations/nope/status', headers: env.auth.viewer })).json().code, 'CONFIGURATION_NOT_FOUND');
  });

  it('accepts a status report only with the very body the agent signed, and only once', async (t) => {
    const env = await testApp(t);
    const agent = fakeAgent('web-1');
    await enrolled(env, agent, { labels: { role: 'web' } });
    const url = '/v1/agent/status';
    const body = JSON.stringify({ labels: { role: 'web' }, configurations: [] });
    const bodySha256 = createHash('sha256').update(body).digest('hex');
    const post = (payload: string, headers: Record<string, string>) => env.app.inject({ method: 'POST', url, payload, headers: { 'content-type': 'application/json', ...headers } });
    const signed = (at: number) => ({ authorization: agent.authorization('POST', url, at, bodySha256), [AGENT_BODY_HASH_HEADER]: bodySha256 });
    const swapped = await post(JSON.stringify({ labels: { role: 'db' }, configurations: [] }), signed(Date.now() - 1));
    assert.equal(swapped.statusCode, 401, swapped.body);
    assert.match(swapped.json().message, /body does not match the SHA-256 the agent signed/);
    const record = () => env.app.inject({ method: 'GET', url: '/v1/agents/web-1', headers: env.auth.viewer }).then((r) => r.json());
    assert.deepEqual((await record()).labels, { role: 'web' }, 'the swapped body changed nothing');
    const unsigned = await post(body, { authorization: agent.authorization('POST', url) });
    assert.equal(unsigned.statusCode, 401, 'a body sent without its hash was signed as no body');
    const signedHeaders = signed(Date.now());
    const good = await post(body, signedHeaders);
    assert.equal(good.statusCode, 204, good.body);
    const replayed = await post(body, signedHeaders);
    assert.equal(replayed.statusCode, 401);
    assert.match(replayed.json().message, /sent this signed request before/);
    // Claimed in the store, which every replica shares (and a restarted server reopens), not in this process alone.
    const signatureHex = Buffer.from(signedHeaders.authorization.split('.').at(-1)!, 'base64url').toString('hex');
    assert.equal(await env.store.claimOnce(signatureHex, 60_000), false, 'the store holds the claim');
    // The same signature spelled with other spare bits in its last base64url character is the same signature.
    const [prefix, signature] = [signedHeaders.authorization.slice(0, -1), signedHeaders.authorization.slice(-1)];
    const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';
    const respelled = `${prefix}${alphabet[alphabet.indexOf(signature) ^ 1]}`;
    assert.notEqual(respelled, signedHeaders.authorization);
    const again = await post(body, { ...signedHeaders, authorization: respelled });
    assert.equal(again.statusCode, 401);
    assert.match(again.json().message, /sent this signed request before/);
    const get = await env.app.inject({ method: 'GET', url: '/v1/agent/desired', headers: { authorization: agent.authorization('GET', '/v1/agent/desired', Date.now(), bodySha256), [AGENT_BODY_HASH_HEADER]: bodySha256 } });
    assert.equal(get.statusCode, 401);
    assert.match(get.json().message, /a GET request has no body to sign/);
    const malformed = await post(body, { authorization: agent.authorization('POST', url), [AGENT_BODY_HASH_HEADER]: 'xyz' });
    assert.match(malformed.json().message, /malformed x-strata-body-sha256/);
  });

  it('still accepts agents that sign the v1 text without a body hash, while they are upgraded', async (t) => {
    const env = await testApp(t);
    const agent = fakeAgent('old-1');
    await enrolled(env, agent, { labels: { role: 'web' } });
    const v1 = (method: string, url: string, at = Date.now()) => `StrataAgent old-1.${at}.${sign(null, Buffer.from(agentSigningInputV1('old-1', at, method, url)), agent.privateKey).toString('base64url')}`;
    assert.equal((await env.app.inject({ method: 'GET', url: '/v1/agent/desired', headers: { authorization: v1('GET', '/v1/agent/desired') } })).statusCode, 200);
    const body = JSON.stringify({ configurations: [] });
    const posted = await env.app.inject({ method: 'POST', url: '/v1/agent/status', payload: body, headers: { authorization: v1('POST', '/v1/agent/status'), 'content-type': 'application/json' } });
    assert.equal(posted.statusCode, 204, posted.body);
    const bodySha256 = createHash('sha256').update(body).digest('hex');
    const mixed = await env.app.inject({ method: 'POST', url: '/v1/agent/status', payload: body, headers: { authorization: v1('POST', '/v1/agent/status', Date.now() + 1), [AGENT_BODY_HASH_HEADER]: bodySha256, 'content-type': 'application/json' } });
    assert.equal(mixed.statusCode, 401, 'a v1 signature never comes with a body hash');
  });

  it('lets an agent read only the blobs its configurations reference', async (t) => {
    const env = await testApp(t);
    const mine = await version(env, 'app', '1', 'my bytes');
    const other = await version(env, 'secret', '1', 'not for you');
    await configure(env, 'site', [['app', '1']]);
    await configure(env, 'vault', [['secret', '1']]);
    const agent = fakeAgent('web-1');
    await enrolled(env, agent, { tracks: ['site'] });
    const allowed = await asAgent(env, agent, 'GET', `/v1/blobs/${mine}`);
    assert.equal(allowed.statusCode, 200);
    assert.equal(allowed.body, 'my bytes');
    const refused = await asAgent(env, agent, 'GET', `/v1/blobs/${other}`);
    assert.equal(refused.statusCode, 403);
    assert.equal(refused.json().code, 'FORBIDDEN');
    assert.equal((await asAgent(env, agent, 'GET', `/v1/blobs/${'0'.repeat(64)}`)).statusCode, 403, 'no probing for absent blobs');
    assert.equal((await env.app.inject({ method: 'GET', url: `/v1/blobs/${other}`, headers: env.auth.viewer })).statusCode, 200);
  });

  it('keeps agents off operator routes and revokes agents as admin only, audited', async (t) => {
    const env = await testApp(t);
    const agent = fakeAgent('web-1');
    await enrolled(env, agent);
    const operatorRoute = await env.app.inject({ method: 'GET', url: '/v1/agents', headers: { authorization: agent.authorization('GET', '/v1/agents') } });
    assert.equal(operatorRoute.statusCode, 401, 'agents may not use operator routes');
    assert.equal((await env.app.inject({ method: 'POST', url: '/v1/agents/web-1/revoke', headers: env.auth.deployer })).statusCode, 403);
    const revoked = await env.app.inject({ method: 'POST', url: '/v1/agents/web-1/revoke', headers: env.auth.admin });
    assert.equal(revoked.statusCode, 200);
    assert.ok(revoked.json().revokedAt);
    assert.equal((await env.app.inject({ method: 'POST', url: '/v1/agents/nope/revoke', headers: env.auth.admin })).json().code, 'AGENT_NOT_FOUND');
    const audit = await env.store.listAudit({ limit: 10, newest: true });
    assert.deepEqual(audit.slice(-2).map((e) => [e.action, e.target, e.result]), [['agent.revoke', 'web-1', 'ok'], ['agent.revoke', 'nope', 'AGENT_NOT_FOUND']]);
  });
});
