/**
 * End to end through NATS failures, with real processes: two `strata server` replicas on a
 * three-node NATS cluster (every stream and bucket with three replicas) and a real agent on B.
 * Killing one NATS node (-9) while configurations change loses no write and the agent converges;
 * restarting the whole NATS cluster needs no operator: servers and agent recover on their own.
 */
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { joinToken, startAgent, waitFor, type TestAgent } from './helpers/strata-agent.ts';
import { startNatsCluster, type NatsDeployment } from './helpers/nats-server.ts';

let root: string;
let nats: NatsDeployment;
let a: TestServer;
let b: TestServer;
let agent: TestAgent | undefined;

async function ok(server: TestServer, args: string[]): Promise<string> {
  const result = await runStrata(args, server.env);
  assert.equal(result.code, 0, `strata ${args.join(' ')}: ${result.stderr}\n${server.logs().split('\n').filter((line) => /"level":5/.test(line)).slice(-3).join('\n')}`);
  return result.stdout;
}

async function push(server: TestServer, version: string): Promise<void> {
  const dir = path.join(root, 'src', version);
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'index.html'), version);
  await ok(server, ['push', dir, '--name', 'code', '--version', version]);
}

const deployed = (): Promise<string> => readFile(path.join(root, 'agent', 'site', 'current', 'index.html'), 'utf8').catch(() => '');

describe('replicas and agents through NATS failures', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-cluster-faults-'));
    nats = await startNatsCluster();
    const servers = nats.servers.join(',');
    a = await startServer(path.join(root, 'a'), ['--nats-replicas', '3'], { store: 'nats', nats: servers });
    b = await startServer(path.join(root, 'b'), ['--nats-replicas', '3'], { store: 'nats', nats: servers, token: a.token });
    await push(a, 'v1');
    await ok(a, ['addconf', '--name', 'site', '--layer', 'code:v1']);
    agent = startAgent({ dir: path.join(root, 'agent'), name: 'edge-1', token: await joinToken(a), args: ['--server', `${b.url},${a.url}`, '--track', 'site'] });
    await waitFor('first deploy', async () => (await deployed()) === 'v1', 30_000);
  });
  after(async () => {
    await agent?.stop('SIGKILL');
    await a?.stop();
    await b?.stop();
    await nats?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('keeps taking configuration changes through A while a NATS node is killed, and the agent on B converges', async () => {
    const versions = ['v2', 'v3', 'v4', 'v5'];
    for (const version of versions) await push(a, version);
    for (const [index, version] of versions.entries()) {
      if (index === 1) await nats.kill(nats.nodes[0]!);
      // A write may meet a leader election; the CLI's one clear error is retried, never lost or doubled.
      await waitFor(`changeconf to ${version}`, async () => {
        const result = await runStrata(['changeconf', '--name', 'site', '--component', 'code', '--version', version], a.env);
        return result.code === 0 || /already uses|no change/i.test(result.stderr);
      }, 20_000, 250);
    }
    await waitFor('the agent to deploy v5', async () => (await deployed()) === 'v5', 30_000);
    // Reads too may meet an election right after the kill (the store reports them as internal errors); retried, bounded.
    const history = await waitFor('the history', async () => {
      const result = await runStrata(['history', '--name', 'site', '--json'], a.env);
      return result.code === 0 ? result.stdout : undefined;
    }, 20_000, 250);
    const revisions = (JSON.parse(history) as { revisions: { layers: { version: string }[] }[] }).revisions.map((r) => r.layers[0]!.version);
    // Every change is there, in order (a retried write that had committed shows at most as a repeat).
    assert.deepEqual(revisions.filter((v, i) => v !== revisions[i - 1]), ['v1', ...versions]);
    await nats.restart(nats.nodes[0]!);
  });

  it('recovers without an operator after the whole NATS cluster restarts', async () => {
    for (const node of nats.nodes) await nats.kill(node);
    await new Promise((resolve) => setTimeout(resolve, 1000));
    await Promise.all(nats.nodes.map((node) => nats.restart(node)));
    await push(a, 'v6').catch(async () => {
      // The first request after the restart may meet JetStream still electing leaders.
      await waitFor('a push after the restart', async () => push(a, 'v6').then(() => true), 30_000, 500);
    });
    const changedAt = Date.now();
    await waitFor('changeconf after the restart', async () => (await runStrata(['changeconf', '--name', 'site', '--component', 'code', '--version', 'v6'], a.env)).code === 0, 30_000, 250);
    await waitFor('the agent to deploy v6', async () => (await deployed()) === 'v6', 30_000);
    assert.ok(Date.now() - changedAt < 30_000);
    assert.equal(a.process.exitCode, null, 'replica A kept running');
    assert.equal(b.process.exitCode, null, 'replica B kept running');
    // While JetStream settles, a request may still meet STORE_UNAVAILABLE (503, retryable): retry it as a client would.
    const pinged = await waitFor('an order through A to reach the agent again', async () => {
      const result = await runStrata(['ping', '--all', '--json'], a.env);
      return result.code === 0 ? (JSON.parse(result.stdout) as Record<string, { ok: boolean }>) : undefined;
    }, 30_000, 500);
    assert.equal(pinged['edge-1']?.ok, true, 'an order through A reaches the agent again');
  });
});
