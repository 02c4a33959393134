/** The fleet CLI against a real server process: an agent enrolled over pinned TLS, then agents, status, assign and revoke. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHttpClient, type HttpClient } from '../src/lib/http-client.ts';
import { runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { fakeAgent, type FakeAgent } from './helpers/fake-agent.ts';
import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { AGENT_BODY_HASH_HEADER } from '../src/protocol/agent.ts';

let root: string;
let server: TestServer;
let client: HttpClient;
const agent: FakeAgent = fakeAgent('web-1');

async function ok(args: string[]): Promise<string> {
  const result = await runStrata(args, server.env);
  assert.equal(result.code, 0, `strata ${args.join(' ')} failed: ${result.stderr}`);
  return result.stdout;
}

async function fails(args: string[], pattern: RegExp, code = 1): Promise<void> {
  const result = await runStrata(args, server.env);
  assert.equal(result.code, code, `strata ${args.join(' ')} should exit ${code}: ${result.stdout}${result.stderr}`);
  assert.match(result.stderr.trim(), pattern);
  assert.equal(result.stderr.trim().split('\n').length, 1, `one line on stderr, got: ${result.stderr}`);
}

/** A request signed by the test agent. */
async function signed(method: string, url: string, json?: unknown): Promise<number> {
  const body = json === undefined ? undefined : Buffer.from(JSON.stringify(json));
  const bodySha256 = body === undefined ? undefined : createHash('sha256').update(body).digest('hex');
  const headers = {
    authorization: agent.authorization(method, url, Date.now(), bodySha256),
    ...(body === undefined ? {} : { [AGENT_BODY_HASH_HEADER]: bodySha256!, 'content-type': 'application/json' }),
  };
  const response = await client.request({ method, path: url, headers, ...(body === undefined ? {} : { body: Readable.from([body]), contentLength: body.length }) });
  response.body.resume();
  return response.status;
}

describe('fleet CLI against a real server', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-fleet-cli-'));
    server = await startServer(path.join(root, 'data'));
    client = createHttpClient({ baseUrl: server.url, fingerprint: server.fingerprint });
  });
  after(async () => {
    client?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('lists, shows, assigns, reports status and revokes', async () => {
    const dir = path.join(root, 'tree');
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, 'index.html'), 'hi');
    await ok(['push', dir, '--name', 'web', '--version', 'v1']);
    await ok(['addconf', '--name', 'site', '--layer', 'web:v1']);
    assert.equal(await ok(['agents']), 'NAME   LABELS   ONLINE   CONFIGS\n');

    const joinToken = (await readFile(path.join(server.dataDir, 'join-token'), 'utf8')).trim();
    const enrolled = await client.request({ method: 'POST', path: '/v1/agents/enroll', headers: { authorization: `Bearer ${joinToken}` }, json: { name: agent.name, publicKey: agent.publicKey, labels: { role: 'web' } } });
    assert.equal(enrolled.status, 201, await enrolled.text());

    await fails(['assign', '--config', 'site', '--selector', 'role=web,'], /^strata: invalid selector "role=web,": expected a label key after ",", found the end at position 10$/, 2);
    assert.equal(await ok(['assign', '--config', 'site', '--selector', 'role==web']), 'assigned site to agents matching role=web\n');
    assert.match(await ok(['assignments']), /^CONFIG   SELECTOR   CREATED +BY\nsite     role=web   \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ   token:/);
    assert.equal(await signed('POST', '/v1/agent/status', { configurations: [{ configuration: 'site', phase: 'deployed', currentRevision: 1, at: new Date().toISOString() }] }), 204);

    assert.equal(await ok(['agents']), 'NAME    LABELS     ONLINE   CONFIGS\nweb-1   role=web   no       site@1 deployed\n');
    assert.equal(JSON.parse(await ok(['agents', '--json'])).agents[0].configurations[0].upToDate, true);
    const shown = await ok(['agents', 'show', 'web-1']);
    assert.match(shown, /^name: +web-1$/m);
    assert.match(shown, /^assigned: +site$/m);
    assert.match(shown, /^CONFIG   REVISION   CURRENT   PHASE +ERROR\nsite     1          1         deployed$/m);
    assert.equal(await ok(['status', '--name', 'site']), 'site revision 1: 1/1 agents deployed, 0 failed, 0 online\n\nAGENT   ONLINE   CURRENT   PHASE      MESSAGE\nweb-1   no       1         deployed\n');
    await fails(['status', '--name', 'nope'], /^configuration "nope" not found$/);
    await fails(['agents', 'show', 'nope'], /^agent "nope" not found$/);

    assert.equal(await ok(['unassign', '--config', 'site', '--selector', 'role=web']), 'unassigned site from agents matching role=web\n');
    await fails(['unassign', '--config', 'site', '--selector', 'role=web'], /is not assigned to "role=web"$/);
    assert.match(await ok(['agents', 'revoke', 'web-1']), /^revoked agent web-1/);
    assert.match(await ok(['agents']), /^web-1   role=web   revoked   -$/m);
    assert.equal(await signed('GET', '/v1/agent/desired'), 401);
  });
});
