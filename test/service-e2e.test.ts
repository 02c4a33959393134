/**
 * End to end with a real server and a real agent process: a configuration with a service
 * deploys and answers on a loopback port; the server shows its state; a `restart` order bumps
 * the restart count; the agent restarts without killing it and re-adopts it; a release whose
 * service fails its health check rolls back (default) or stays failed (`onFailure = "stay"`).
 */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { access, chmod, mkdir, mkdtemp, readlink, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { agentRecord, joinToken, startAgent, waitFor, type TestAgent } from './helpers/strata-agent.ts';
import { freePort, httpServerScript } from './helpers/service-release.ts';

let root: string;
let server: TestServer;
let token: string;
let port: number;
let agent: TestAgent;
const dir = () => path.join(root, 'agent');

async function ok(args: string[]): Promise<string> {
  const result = await runStrata(args, server.env);
  assert.equal(result.code, 0, `strata ${args.join(' ')}: ${result.stderr}`);
  return result.stdout;
}

/** Pushes app:VERSION whose serve.sh answers HTTP `status` with body VERSION. */
async function pushApp(version: string, status: number): Promise<void> {
  const src = path.join(root, 'src', version);
  await mkdir(src, { recursive: true });
  await writeFile(path.join(src, 'serve.sh'), httpServerScript({ status, body: version }));
  await chmod(path.join(src, 'serve.sh'), 0o755);
  await ok(['push', src, '--name', 'app', '--version', version]);
}

async function serviceFile(name: string, onFailure: 'rollback' | 'stay'): Promise<string> {
  const file = path.join(root, name);
  await writeFile(file, [
    'command = "serve.sh"', `args = ["${port}"]`, `onFailure = "${onFailure}"`,
    '[restart]', 'backoff = "200ms"', '[stop]', 'grace = "2s"',
    '[health]', `http = "http://127.0.0.1:${port}/"`, 'interval = "200ms"', 'timeout = "500ms"', 'within = "3s"', '',
  ].join('\n'));
  return file;
}

async function answer(): Promise<string | undefined> {
  try {
    const response = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(1000) });
    return `${response.status} ${await response.text()}`;
  } catch {
    return undefined;
  }
}

type ServiceView = { state: string; pid?: number; restarts: number; health?: string };
async function siteView(): Promise<{ phase: string; currentRevision?: number; error?: { code: string; message: string }; service?: ServiceView } | undefined> {
  const record = await agentRecord(server, 'web-1');
  return (record.configurations as { configuration: string; phase: string; service?: ServiceView }[] | undefined)?.find((c) => c.configuration === 'site');
}

describe('services deployed by a real agent', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-service-e2e-'));
    server = await startServer(path.join(root, 'data'));
    token = await joinToken(server);
    port = await freePort();
  });
  after(async () => {
    await agent?.stop('SIGKILL');
    // The agent leaves services running on purpose; this test stops them.
    await runStrata(['agent', 'stop-services', '--dir', dir()], server.env);
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('refuses a bad service file with one line naming the field, and stores nothing', async () => {
    await pushApp('v1', 200);
    const bad = path.join(root, 'bad.toml');
    await writeFile(bad, 'command = "/usr/bin/env"\n');
    const result = await runStrata(['addconf', '--name', 'site', '--layer', 'app:v1', '--service', bad], server.env);
    assert.notEqual(result.code, 0);
    assert.equal(result.stderr.trim().split('\n').length, 1);
    assert.match(result.stderr, /bad\.toml: command: must be a path inside the release/);
    await writeFile(bad, 'command = "serve.sh"\n[restart]\npolicy = "sometimes"\n');
    const policy = await runStrata(['addconf', '--name', 'site', '--layer', 'app:v1', '--service', bad], server.env);
    assert.match(policy.stderr, /restart\.policy: /);
    assert.notEqual((await runStrata(['showconf', '--name', 'site'], server.env)).code, 0, 'no configuration was created');
  });

  it('deploys the service, which answers on its port, and the server shows it running', async () => {
    await ok(['addconf', '--name', 'site', '--layer', 'app:v1', '--service', await serviceFile('rollback.toml', 'rollback')]);
    agent = startAgent({ server, dir: dir(), name: 'web-1', token, args: ['--track', 'site'] });
    assert.equal(await waitFor('the service answers', answer, 30_000), '200 v1');
    const view = await waitFor('reported running', async () => {
      const site = await siteView();
      return site?.phase === 'deployed' && site.service?.state === 'running' ? site : undefined;
    });
    assert.equal(typeof view.service?.pid, 'number');
    assert.equal(view.service?.restarts, 0);
    const shown = await ok(['agents', 'show', 'web-1']);
    assert.match(shown, new RegExp(`^CONFIG +REVISION +CURRENT +PHASE +SERVICE +ERROR\nsite +1 +1 +deployed +running pid ${view.service?.pid}, 0 restarts$`, 'm'));
  });

  it('restarts the service as an order, bumping its restart count', async () => {
    const before = (await siteView())!.service!;
    const out = JSON.parse(await ok(['restart', '--name', 'site', '--hosts', 'web-1', '--json']));
    const result = (out.results ?? out).find?.((r: { host: string }) => r.host === 'web-1') ?? out;
    assert.ok(JSON.stringify(result).includes('"ok":true'), JSON.stringify(out));
    const after = await waitFor('restart reported', async () => {
      const service = (await siteView())?.service;
      return service && service.restarts === before.restarts + 1 && service.state === 'running' ? service : undefined;
    });
    assert.notEqual(after.pid, before.pid);
    assert.equal(await answer(), '200 v1');
    const none = await runStrata(['restart', '--name', 'nothing', '--hosts', 'web-1'], server.env);
    assert.notEqual(none.code, 0);
  });

  it('survives an agent restart: the service keeps answering and is re-adopted with the same pid', async () => {
    const pid = (await siteView())!.service!.pid!;
    assert.equal(await agent.stop('SIGTERM'), 0);
    assert.equal(await answer(), '200 v1');
    process.kill(pid, 0);
    agent = startAgent({ server, dir: dir(), args: ['--metrics-interval', '1s'] });
    await waitFor('re-adopted and reported', async () => {
      const service = (await siteView())?.service;
      return service?.state === 'running' && service.pid === pid && agent.logs().includes('adopted the running service');
    }, 30_000);
  });

  it("reports the adopted service's memory and restarts in the agent's metrics", async () => {
    type Summary = { services: { name: string; state: string; rss?: number; cpu?: number; restarts: number }[] };
    const service = await waitFor('the service in a metrics summary', async () => {
      const result = await runStrata(['agents', 'show', 'web-1', '--metrics', '--json'], server.env);
      const history = (JSON.parse(result.stdout) as { metrics: { history: Summary[] } }).metrics.history;
      return history.at(-1)?.services.find((s) => s.name === 'site' && s.rss !== undefined);
    }, 30_000);
    assert.equal(service.state, 'running');
    assert.equal(service.restarts, (await siteView())!.service!.restarts);
    // The service is a shell script serving HTTP: more than a megabyte, less than a gigabyte.
    assert.ok(service.rss! > 1024 * 1024 && service.rss! < 1024 ** 3, `rss ${service.rss}`);
  });

  it('fails a release whose service cannot run from it before stopping anything', async () => {
    const pid = (await siteView())!.service!.pid!;
    const missing = path.join(root, 'missing.toml');
    await writeFile(missing, 'command = "no-such-program"\n');
    await ok(['changeconf', '--name', 'site', '--service', missing]);
    const view = await waitFor('failed as invalid', async () => {
      const site = await siteView();
      return site?.phase === 'failed' && site.error?.code === 'SERVICE_INVALID' ? site : undefined;
    }, 30_000);
    assert.match(view.error!.message, /command: no-such-program does not exist in the release/);
    assert.equal(view.service?.pid, pid);
    assert.equal(await answer(), '200 v1');
    // Back to the working service file: the same content as revision 1, so nothing changes.
    await ok(['changeconf', '--name', 'site', '--service', path.join(root, 'rollback.toml')]);
    await waitFor('deployed again', async () => (await siteView())?.phase === 'deployed', 30_000);
    assert.equal((await siteView())?.service?.pid, pid);
  });

  it('rolls back when the new release never becomes healthy, and the old one keeps serving', async () => {
    const oldTarget = await readlink(path.join(dir(), 'site', 'current'));
    await pushApp('v2', 500);
    await ok(['changeconf', '--name', 'site', '--component', 'app', '--version', 'v2']);
    // While the deploy waits for the new service to become healthy, a restart order is refused, not interleaved.
    await waitFor('the deploy in its service phase', async () => (await siteView())?.phase === 'service', 20_000, 20);
    const busy = await runStrata(['restart', '--name', 'site', '--hosts', 'web-1', '--json'], server.env);
    assert.notEqual(busy.code, 0);
    assert.match(busy.stdout, /"code":\s*"BUSY"/, busy.stdout);
    const view = await waitFor('failed and rolled back', async () => {
      const site = await siteView();
      return site?.phase === 'failed' && site.service?.state === 'running' ? site : undefined;
    }, 40_000);
    assert.equal(view.error?.code, 'SERVICE_UNHEALTHY');
    assert.match(view.error!.message, /did not become healthy .*HTTP 500.*rolled back to revision 3/);
    assert.equal(await readlink(path.join(dir(), 'site', 'current')), oldTarget);
    assert.equal(await answer(), '200 v1');
  });

  it('with onFailure = "stay" leaves the new release current and failed', async () => {
    await ok(['changeconf', '--name', 'site', '--service', await serviceFile('stay.toml', 'stay')]);
    const view = await waitFor('failed and staying', async () => {
      const site = await siteView();
      return site?.phase === 'failed' && site.error?.message.includes('on-failure stay') ? site : undefined;
    }, 40_000);
    assert.equal(view.currentRevision, 5);
    assert.equal(await waitFor('the new release answers', async () => ((await answer()) === '500 v2' ? '500 v2' : undefined)), '500 v2');
  });

  it('stops the service when the configuration drops its service section', async () => {
    const pid = (await siteView())!.service!.pid!;
    await ok(['changeconf', '--name', 'site', '--no-service']);
    await waitFor('deployed without a service', async () => {
      const site = await siteView();
      return site?.phase === 'deployed' && site.currentRevision === 6 && site.service === undefined;
    }, 30_000);
    assert.equal(await answer(), undefined);
    assert.throws(() => process.kill(pid, 0), /ESRCH/);
    await assert.rejects(access(path.join(dir(), 'site', 'service.json')));
  });
});
