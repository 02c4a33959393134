/** Health checks (http, tcp, command: pass, fail, timeout) and what the supervisor does with them. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import { createServer as createTcpServer } from 'node:net';
import path from 'node:path';
import { createLogger } from '../src/lib/logger.ts';
import { checkHealth } from '../src/agent/service/health.ts';
import { ProcessSupervisor } from '../src/agent/service/supervisor.ts';
import { ServiceSpecSchema, type ServiceSpecInput } from '../src/protocol/service.ts';
import { tempDir } from './helpers/temp-dir.ts';
import { waitFor } from './helpers/strata-agent.ts';
import { freePort, httpServerScript, nodeScript, resolveSpec, writeRelease } from './helpers/service-release.ts';
import { processStat } from '../src/agent/service/proc.ts';

const timing = { intervalMs: 100, timeoutMs: 300, withinMs: 2000, failures: 2 };
const context = { cwd: '/', env: { PATH: process.env['PATH'] ?? '' } };

test('http: 2xx passes, 5xx fails, no answer times out, nothing listening fails', async (t) => {
  const server = createServer((req, res) => {
    if (req.url === '/slow') return; // never answers
    res.statusCode = req.url === '/ok' ? 204 : 503;
    res.end();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }));
  const base = `http://127.0.0.1:${(server.address() as { port: number }).port}`;
  assert.deepEqual(await checkHealth({ kind: 'http', url: `${base}/ok`, ...timing }, context), { ok: true, message: `GET ${base}/ok: HTTP 204` });
  assert.deepEqual(await checkHealth({ kind: 'http', url: `${base}/bad`, ...timing }, context), { ok: false, message: `GET ${base}/bad: HTTP 503` });
  const begun = Date.now();
  const slow = await checkHealth({ kind: 'http', url: `${base}/slow`, ...timing }, context);
  assert.equal(slow.ok, false);
  assert.match(slow.message, /no answer within 300 ms/);
  assert.ok(Date.now() - begun < 2000);
  const closed = await checkHealth({ kind: 'http', url: `http://127.0.0.1:${await freePort()}/`, ...timing }, context);
  assert.deepEqual([closed.ok, /ECONNREFUSED/.test(closed.message)], [false, true]);
});

test('tcp: a listening port passes, a closed one fails', async (t) => {
  const server = createTcpServer((socket) => socket.end());
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())));
  const port = (server.address() as { port: number }).port;
  assert.equal((await checkHealth({ kind: 'tcp', host: '127.0.0.1', port, ...timing }, context)).ok, true);
  const closed = await checkHealth({ kind: 'tcp', host: '127.0.0.1', port: await freePort(), ...timing }, context);
  assert.deepEqual([closed.ok, closed.message.includes('ECONNREFUSED')], [false, true]);
});

test('command: exit 0 passes, non-zero fails with its output, a hung command times out', async (t) => {
  const dir = await writeRelease(await tempDir(t), {
    'ok.sh': '#!/bin/sh\necho fine\n', 'bad.sh': '#!/bin/sh\necho "db down" >&2\nexit 2\n', 'hang.sh': '#!/bin/sh\nsleep 30\n',
  });
  assert.deepEqual(await checkHealth({ kind: 'command', argv: [path.join(dir, 'ok.sh')], ...timing }, context), { ok: true, message: 'ok.sh: exit 0: fine' });
  assert.deepEqual(await checkHealth({ kind: 'command', argv: [path.join(dir, 'bad.sh')], ...timing }, context), { ok: false, message: 'bad.sh: exit 2: db down' });
  const begun = Date.now();
  const hung = await checkHealth({ kind: 'command', argv: [path.join(dir, 'hang.sh')], ...timing }, context);
  assert.deepEqual(hung, { ok: false, message: 'hang.sh: no answer within 300 ms' });
  assert.ok(Date.now() - begun < 3000);
});

async function supervised(t: { after: (fn: () => Promise<void>) => void }, spec: ServiceSpecInput) {
  const confDir = await tempDir(t);
  const release = await writeRelease(path.join(confDir, 'releases', 'r1'), { 'serve.sh': httpServerScript(), 'fail.sh': '#!/bin/sh\nexit 1\n' });
  const resolved = await resolveSpec(spec, release);
  const sup = new ProcessSupervisor({ configuration: 'site', confDir, log: createLogger({ level: 'silent' }), pollMs: 100 });
  t.after(() => sup.stop());
  await sup.start(resolved, { releaseId: 'r1', revision: 1, spec: ServiceSpecSchema.parse(spec) });
  return sup;
}

test('the supervisor waits for the first passing check, and restarts a service that turns unhealthy', async (t) => {
  const port = await freePort();
  const sup = await supervised(t, {
    command: 'serve.sh', args: [String(port)], restart: { backoff: '100ms' },
    health: { http: `http://127.0.0.1:${port}/`, interval: '100ms', timeout: '300ms', within: '5s', failures: 2 },
  });
  assert.deepEqual(await sup.waitHealthy(), { ok: true, message: `GET http://127.0.0.1:${port}/: HTTP 200` });
  const pid = sup.info().pid!;
  // Stopping the server's listener (SIGSTOP freezes it: the port accepts but never answers) makes checks time out.
  process.kill(pid, 'SIGSTOP');
  await waitFor('a restart after failed checks', async () => sup.info().restarts >= 1 && sup.info().pid !== pid, 10_000, 50);
  await waitFor('healthy again', async () => sup.state === 'running', 10_000, 50);
});

test('a service that never passes within its window is unhealthy; waitHealthy says why', async (t) => {
  const port = await freePort();
  const sup = await supervised(t, {
    command: 'serve.sh', args: [String(port), '500'], restart: { policy: 'never' },
    health: { http: `http://127.0.0.1:${port}/`, interval: '100ms', timeout: '300ms', within: '1s' },
  });
  const result = await sup.waitHealthy();
  assert.equal(result.ok, false);
  assert.match(result.message, /^unhealthy: no passing health check within 1000 ms \(last: GET .*: HTTP 500\)/);
  assert.equal(sup.state, 'unhealthy');
});

test('stopping a service while an unhealthy restart is stopping it, then starting another, leaves no orphan', async (t) => {
  const port = await freePort();
  const confDir = await tempDir(t);
  // Takes a while to die on SIGTERM, so the two stops overlap.
  const slowStop = nodeScript(`
    require('node:http').createServer((req, res) => { res.statusCode = 500; res.end(); }).listen(Number(process.argv[1]), '127.0.0.1');
    process.on('SIGTERM', () => setTimeout(() => process.exit(0), 300));
  `);
  const release = await writeRelease(path.join(confDir, 'releases', 'r1'), { 'serve.sh': slowStop, 'good.sh': httpServerScript() });
  const spec = { command: 'serve.sh', args: [String(port)], restart: { backoff: '100ms' }, stop: { grace: '3s' }, health: { http: `http://127.0.0.1:${port}/`, interval: '100ms', timeout: '300ms', within: '700ms' } } satisfies ServiceSpecInput;
  const sup = new ProcessSupervisor({ configuration: 'site', confDir, log: createLogger({ level: 'silent' }), pollMs: 100 });
  t.after(() => sup.stop());
  await sup.start(await resolveSpec(spec, release), { releaseId: 'r1', revision: 1, spec: ServiceSpecSchema.parse(spec) });
  const first = sup.info().pid!;
  assert.equal((await sup.waitHealthy()).ok, false);
  await sup.stop();
  assert.equal(await processStat(first).then((s) => s?.state === 'Z' ? undefined : s), undefined);
  const good = { command: 'good.sh', args: [String(port)], health: { http: `http://127.0.0.1:${port}/`, interval: '100ms' } } satisfies ServiceSpecInput;
  await sup.start(await resolveSpec(good, release, 2), { releaseId: 'r2', revision: 2, spec: ServiceSpecSchema.parse(good) });
  assert.equal((await sup.waitHealthy()).ok, true);
  await new Promise((resolve) => setTimeout(resolve, 800));
  const second = sup.info().pid;
  assert.ok(second !== undefined && (await processStat(second)) !== undefined, 'the new process is still tracked');
  await sup.stop();
  assert.equal(await processStat(second).then((s) => s?.state === 'Z' ? undefined : s), undefined, 'and stopped with the supervisor');
});
