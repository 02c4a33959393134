/** Shared by the agent-server tests: an in-test agent with its own Ed25519 key, join tokens, and configurations to track. */
import { createHash, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import assert from 'node:assert/strict';
import { generateJoinToken } from '../../src/core/tokens.ts';
import { AGENT_BODY_HASH_HEADER, agentSigningInput } from '../../src/protocol/agent.ts';
import type { ChannelTiming } from '../../src/server/channel/hub.ts';
import { TEST_CA, testApp, type TestApp } from './app.ts';

/** An agent identity the test drives by hand. */
export interface FakeAgent {
  name: string;
  publicKey: string;
  privateKey: KeyObject;
  /** The Authorization header for one request, signed over the SHA-256 of its body (none by default). */
  authorization(method: string, path: string, timestampMs?: number, bodySha256?: string): string;
}

/** A new agent with a fresh Ed25519 key pair. */
export function fakeAgent(name: string): FakeAgent {
  const { publicKey, privateKey } = generateKeyPairSync('ed25519');
  // As the real agent does: strictly increasing timestamps, so two identical requests are two signatures.
  let lastSignedAt = 0;
  return {
    name, privateKey,
    publicKey: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    authorization(method, path, timestampMs = (lastSignedAt = Math.max(Date.now(), lastSignedAt + 1)), bodySha256?: string) {
      const signature = sign(null, Buffer.from(agentSigningInput(name, timestampMs, method, path, bodySha256)), privateKey).toString('base64url');
      return `StrataAgent ${name}.${timestampMs}.${signature}`;
    },
  };
}

/** Stores a join token (optionally revoked or expired) and returns its text. */
export async function joinToken(env: TestApp, options: { revoked?: boolean; expired?: boolean; ca?: string } = {}): Promise<{ text: string; id: string }> {
  const token = generateJoinToken(options.ca ?? TEST_CA);
  const now = Date.now();
  await env.store.createToken({
    id: token.id, kind: 'join', role: 'agent', name: 'rack', secretHash: token.secretHash, createdAt: new Date(now).toISOString(), createdBy: 'test',
    ...(options.revoked ? { revokedAt: new Date(now).toISOString() } : {}),
    ...(options.expired ? { expiresAt: new Date(now - 1000).toISOString() } : {}),
  });
  return { text: token.text, id: token.id };
}

/** Enrolls an agent; returns the response. */
export async function enroll(env: TestApp, agent: FakeAgent, token: string, body: Record<string, unknown> = {}) {
  return env.app.inject({ method: 'POST', url: '/v1/agents/enroll', headers: { authorization: `Bearer ${token}` }, payload: { name: agent.name, publicKey: agent.publicKey, ...body } });
}

/** Enrolls an agent and asserts it worked. */
export async function enrolled(env: TestApp, agent: FakeAgent, body: Record<string, unknown> = {}): Promise<void> {
  const response = await enroll(env, agent, (await joinToken(env)).text, body);
  assert.equal(response.statusCode, 201, response.body);
}

/** A signed request as the agent. */
export async function asAgent(env: TestApp, agent: FakeAgent, method: 'GET' | 'POST', url: string, payload?: unknown) {
  if (payload === undefined) return env.app.inject({ method, url, headers: { authorization: agent.authorization(method, url) } });
  const body = JSON.stringify(payload);
  const bodySha256 = createHash('sha256').update(body).digest('hex');
  const headers = { authorization: agent.authorization(method, url, Date.now(), bodySha256), [AGENT_BODY_HASH_HEADER]: bodySha256, 'content-type': 'application/json' };
  return env.app.inject({ method, url, headers, payload: body });
}

/** Stores a version of `component` with bytes `content` (the store does not inspect) and returns its blob. */
export async function version(env: TestApp, component: string, versionName: string, content = `${component}:${versionName}`): Promise<string> {
  async function* bytes() { yield Buffer.from(content); }
  const blob = await env.store.putBlob(bytes());
  assert.equal(blob.sha256, createHash('sha256').update(content).digest('hex'));
  await env.store.addVersion({ component, version: versionName, blob: blob.sha256, actor: 'test' });
  return blob.sha256;
}

/** Creates or replaces a configuration through the API as a deployer. */
export async function configure(env: TestApp, name: string, layers: [string, string][]): Promise<{ revision: number; id: string }> {
  const response = await env.app.inject({ method: 'PUT', url: `/v1/configurations/${name}`, headers: env.auth.deployer, payload: { layers: layers.map(([component, v]) => ({ component, version: v })), force: true } });
  assert.equal(response.statusCode, 200, response.body);
  return response.json();
}

/** Like testApp with small limits, and the channel's heartbeat timing shortened; closed after the test. */
export async function channelApp(t: { after: (fn: () => Promise<void>) => void }, channel: ChannelTiming): Promise<TestApp> {
  return testApp(t, { maxUploadBytes: 1024 * 1024, maxEntries: 100, maxUnpackedBytes: 1024 * 1024 }, channel);
}
