/**
 * `strata migrate --from sqlite:DIR --to nats://…`: fills a SQLite store with every kind of
 * record, migrates it into a real nats-server, and reads everything back through the NATS
 * store; a second run refuses the non-empty target, and --resume completes without duplicates.
 */
import assert from 'node:assert/strict';
import { after, before, it } from 'node:test';
import { PassThrough } from 'node:stream';
import path from 'node:path';
import { runCli } from '../src/cli/run.ts';
import type { Store } from '../src/store/contract.ts';
import { addVersion, chunks, putConfiguration, readAll } from '../src/store/conformance-helpers.ts';
import { openNatsStore } from '../src/store/nats/nats-store.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';
import { startNatsServer, type NatsDeployment } from './helpers/nats-server.ts';
import { tempDir } from './helpers/temp-dir.ts';

let nats: NatsDeployment;
before(async () => {
  nats = await startNatsServer();
});
after(async () => {
  await nats?.stop();
});

/** Runs the CLI, returning its exit status and output. */
async function cli(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (d: Buffer) => (stdout += d.toString()));
  err.on('data', (d: Buffer) => (stderr += d.toString()));
  const code = await runCli(args, { stdout: out, stderr: err, env: {}, setExitCode: () => undefined });
  return { code, stdout, stderr };
}

/** Everything a store holds, with `seq`s left out (the target numbers its own). */
async function snapshot(store: Store) {
  const noSeq = <T extends { seq: number }>({ seq: _seq, ...rest }: T) => rest;
  const components = await store.listComponents();
  const configurations = await store.listConfigurations();
  const orders = await store.listOrders({ limit: 100 });
  return {
    components,
    versions: await Promise.all(components.map((c) => store.listVersions(c.name))),
    blobs: await Promise.all(components.map(async (c) => (await readAll((await store.getBlob(c.latest.blob)).stream)).toString('base64'))),
    histories: await Promise.all(configurations.map(async (c) => (await store.configurationHistory(c.name)).map(noSeq))),
    tokens: await store.listTokens(),
    agents: await store.listAgents(),
    assignments: await store.listAssignments(),
    groups: await store.listGroups(),
    orders,
    orderResults: await Promise.all(orders.map((o) => store.getOrder(o.id))),
    audit: (await store.listAudit({ limit: 1000 })).map(noSeq),
    state: await store.listState(),
  };
}

it('copies a SQLite store into NATS with full history, refuses a non-empty target, and resumes', async (t) => {
  const data = await tempDir(t);
  const sqlite = await openSqliteStore({ dir: path.join(data, 'store') });
  const web1 = await addVersion(sqlite, 'web', '1');
  const web2 = await sqlite.addVersion({ component: 'web', version: '2', blob: (await sqlite.putBlob(chunks(Buffer.alloc(700_000, 3)))).sha256, actor: 'ci' });
  const api = await addVersion(sqlite, 'api', '1.0');
  let site = await putConfiguration(sqlite, 'site', [web1], 0, { note: 'first' });
  site = await putConfiguration(sqlite, 'site', [web1, api], site.revision, { settings: { hook: 'x' } });
  await putConfiguration(sqlite, 'site', [web2, api], site.revision, { note: 'rollout' });
  await sqlite.deleteVersion('web', '1');
  await putConfiguration(sqlite, 'gone', [api], 0);
  await sqlite.deleteConfiguration('gone', { actor: 'tester' });
  await putConfiguration(sqlite, 'gone', [api], 0, { note: 'again' });
  await sqlite.createToken({ id: 'tok2', kind: 'api', role: 'admin', name: 'b', secretHash: 'h2', createdAt: '2024-01-01T00:00:00.000Z', createdBy: 'root' });
  await sqlite.createToken({ id: 'tok1', kind: 'join', role: 'agent', name: 'a', secretHash: 'h1', createdAt: '2024-01-01T00:00:00.000Z', createdBy: 'root' });
  await sqlite.revokeToken('tok2', '2024-02-01T00:00:00.000Z');
  const agent = await sqlite.putAgent({ name: 'web-1', labels: { role: 'web' }, tracks: ['site'], enrolledAt: '2024-01-01T00:00:00.000Z' }, 0);
  await sqlite.putAgent({ ...agent, status: { site: { phase: 'ok' } } }, agent.revision);
  await sqlite.putAssignment({ configuration: 'site', selector: 'role=web', actor: 'alice' });
  await sqlite.putGroup({ name: 'webs', hosts: ['web-1'], actor: 'alice' });
  await sqlite.createOrder({ id: 'o1', actor: 'alice', args: { verb: 'ping' }, target: { all: true }, hosts: ['web-1'] });
  await sqlite.createOrder({ id: 'o2', actor: 'alice', args: { verb: 'ping' }, target: { all: true }, hosts: ['web-1'] });
  await sqlite.finishOrder('o1', { summary: { ok: 1, failed: 0, offline: 0, timedOut: 0 }, results: { 'web-1': { ok: true, code: 'OK', message: 'pong', durationMs: 2 } } });
  for (let i = 0; i < 3; i += 1) await sqlite.appendAudit({ actor: 'alice', action: 'test', target: `t${i}`, result: 'ok', details: { i } });
  await sqlite.putStateIfAbsent('ca', 'pem');
  const expected = await snapshot(sqlite);
  await sqlite.close();

  const to = nats.servers.join(',');
  const first = await cli(['migrate', '--from', `sqlite:${data}`, '--to', to, '--nats-prefix', 'mig']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stdout, /versions: 2 in 2 components/);
  assert.match(first.stdout, /Verified, source = target/);

  const target = await openNatsStore({ servers: nats.servers, replicas: 1, prefix: 'mig', spoolDir: path.join(data, 'spool') });
  try {
    assert.deepEqual(await snapshot(target), expected);
    const history = await target.configurationHistory('site');
    assert.deepEqual(history.map((c) => c.revision), [1, 2, 3]);
    assert.ok(history.every((c, i) => i === 0 || c.seq > history[i - 1]!.seq));
    assert.equal((await putConfiguration(target, 'site', [web2], 3)).revision, 4, 'the migrated history continues');
  } finally {
    await target.close();
  }

  const again = await cli(['migrate', '--from', `sqlite:${data}`, '--to', to, '--nats-prefix', 'mig']);
  assert.equal(again.code, 1);
  assert.match(again.stderr, /target is not empty/);

  // A fresh target with part of the copy in it (as an interrupted run leaves it) is completed by --resume.
  const partial = await openNatsStore({ servers: nats.servers, replicas: 1, prefix: 'mig2', spoolDir: path.join(data, 'spool') });
  const source = await openSqliteStore({ dir: path.join(data, 'store') });
  try {
    const { stream } = await source.getBlob(web2.blob);
    await partial.putBlob(stream, { expectedSha256: web2.blob });
    await partial.importRecord({ kind: 'version', version: (await source.getVersion('web', '2'))! });
    await partial.putBlob((await source.getBlob(api.blob)).stream, { expectedSha256: api.blob });
    await partial.importRecord({ kind: 'version', version: api });
    await partial.importRecord({ kind: 'history', revisions: (await source.configurationHistory('gone')).map(({ seq: _s, ...r }) => r) });
    await partial.appendAudit((await source.listAudit({ limit: 1 }))[0]!);
  } finally {
    await source.close();
    await partial.close();
  }
  const resumed = await cli(['migrate', '--from', `sqlite:${data}`, '--to', to, '--nats-prefix', 'mig2', '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  const completed = await openNatsStore({ servers: nats.servers, replicas: 1, prefix: 'mig2', spoolDir: path.join(data, 'spool') });
  try {
    assert.deepEqual(await snapshot(completed), expected);
  } finally {
    await completed.close();
  }
});
