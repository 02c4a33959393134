/** A real agent given several server URLs moves on from one that cannot be reached to the next, for its channel and its polls. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { createServer } from 'node:net';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { runStrata, startServer } from './helpers/strata-server.ts';
import { agentRecord, joinToken, startAgent, waitFor } from './helpers/strata-agent.ts';
import { tempDir } from './helpers/temp-dir.ts';

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const port = (server.address() as { port: number }).port;
  server.close();
  await once(server, 'close');
  return port;
}

describe('agent with several server URLs', () => {
  it('skips a replica that is down and converges through the next one', async (t) => {
    const root = await tempDir(t);
    const server = await startServer(path.join(root, 'data'));
    t.after(() => server.stop());
    const src = path.join(root, 'src');
    await mkdir(src);
    await writeFile(path.join(src, 'index.html'), 'v1');
    assert.equal((await runStrata(['push', src, '--name', 'code', '--version', 'v1'], server.env)).code, 0);
    assert.equal((await runStrata(['addconf', '--name', 'site', '--layer', 'code:v1'], server.env)).code, 0);

    const dir = path.join(root, 'agent');
    const first = startAgent({ server, dir, name: 'edge-1', token: await joinToken(server), args: ['--track', 'site'] });
    await waitFor('first deploy', async () => (await agentRecord(server, 'edge-1')).configurations?.[0]?.phase === 'deployed');
    await first.stop();

    // The dead replica comes first: the agent must move on to the live one.
    const dead = `https://127.0.0.1:${await deadPort()}`;
    const agent = startAgent({ dir, args: ['--server', `${dead},${server.url}`] });
    t.after(() => agent.stop('SIGKILL'));
    await waitFor('online through the second URL', async () => (await agentRecord(server, 'edge-1')).online === true, 20_000);
    await writeFile(path.join(src, 'index.html'), 'v2');
    assert.equal((await runStrata(['push', src, '--name', 'code', '--version', 'v2'], server.env)).code, 0);
    assert.equal((await runStrata(['changeconf', '--name', 'site', '--component', 'code', '--version', 'v2'], server.env)).code, 0);
    await waitFor('v2 deployed', async () => (await agentRecord(server, 'edge-1')).configurations?.[0]?.currentRevision === 2, 20_000);
    assert.match(agent.logs(), new RegExp(`"server":"${server.url.replace(/[.]/g, '\\.')}"`), 'the agent says which replica it moved to');
  });

  it('refuses an empty server list with a clear message', async (t) => {
    const dir = await tempDir(t);
    const result = await runStrata(['agent', '--dir', dir, '--server', ' , ', '--join-token', 'x', '--name', 'a', '--once']);
    assert.notEqual(result.code, 0);
    assert.equal(result.stderr.trim().split('\n').at(-1), 'no server URL given', result.stderr);
  });
});
