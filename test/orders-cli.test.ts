/** Order commands as real processes against a real server, with fake agents on real TLS sockets: --json shape, streaming rows, exit codes. */
import { describe, it, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createHttpClient, fetchPinnedCertificate, type HttpClient } from '../src/lib/http-client.ts';
import type { AgentOrder } from '../src/protocol/orders.ts';
import { CLI, runStrata, startServer, type TestServer } from './helpers/strata-server.ts';
import { fakeAgent } from './helpers/fake-agent.ts';
import { answerOk, orderAgent, sleep, type OrderAgent } from './helpers/order-agent.ts';

let root: string;
let server: TestServer;
let client: HttpClient;
const agents: Record<string, OrderAgent> = {};
const seen: AgentOrder[] = [];

async function strata(args: string[]) {
  return runStrata(args, server.env);
}

/** Asserts a one-line error and the exit status. */
async function refused(args: string[], code: number, pattern: RegExp): Promise<void> {
  const result = await strata(args);
  assert.equal(result.code, code, `strata ${args.join(' ')}: ${result.stdout}${result.stderr}`);
  assert.match(result.stderr.trim(), pattern);
  assert.equal(result.stderr.trim().split('\n').length, 1, result.stderr);
}

describe('order commands against a real server', () => {
  before(async () => {
    root = await mkdtemp(path.join(os.tmpdir(), 'strata-orders-cli-'));
    server = await startServer(path.join(root, 'data'));
    client = createHttpClient({ baseUrl: server.url, fingerprint: server.fingerprint });
    const ca = await fetchPinnedCertificate(server.url, server.fingerprint);
    const join = (await readFile(path.join(server.dataDir, 'join-token'), 'utf8')).trim();
    for (const [name, labels, online] of [['web-1', { role: 'web' }, true], ['web-2', { role: 'web' }, true], ['mute', { role: 'db' }, true], ['gone', { role: 'web' }, false]] as const) {
      const identity = fakeAgent(name);
      const enrolled = await client.request({ method: 'POST', path: '/v1/agents/enroll', headers: { authorization: `Bearer ${join}` }, json: { name, publicKey: identity.publicKey, labels } });
      assert.equal(enrolled.status, 201, await enrolled.text());
      if (!online) continue;
      agents[name] = await orderAgent(server.url.replace(/^http/, 'ws'), identity, (order, progress) => {
        seen.push(order);
        if (name === 'mute') return undefined;
        if (order.args.verb !== 'logs') return answerOk(order);
        if (!order.args.follow) return { ok: true, code: 'OK', message: '', content: { lines: [`${name} old 1`, `${name} old 2`] }, durationMs: 2 };
        progress({ lines: [`${name} new 1`] });
        progress({ lines: [`${name} new 2`] });
        return undefined;
      }, { ca });
    }
  });
  after(async () => {
    for (const agent of Object.values(agents)) await agent.close();
    client?.close();
    await server?.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('prints one JSON object keyed by host and exits 0 only when every host succeeded', async () => {
    const ok = await strata(['ping', '--hosts', 'web-1,web-2', '--json']);
    assert.equal(ok.code, 0, ok.stderr);
    const body = JSON.parse(ok.stdout) as Record<string, { ok: boolean; code: string; message: string; content: { rttMs: number }; durationMs: number }>;
    assert.deepEqual(Object.keys(body), ['web-1', 'web-2']);
    assert.deepEqual(Object.keys(body['web-1']!).sort(), ['code', 'content', 'durationMs', 'message', 'ok']);
    assert.equal(typeof body['web-1']!.content.rttMs, 'number');

    const mixed = await strata(['ping', '--selector', 'role=web', '--json']);
    assert.equal(mixed.code, 1, 'an offline host is a failure');
    const parsed = JSON.parse(mixed.stdout) as Record<string, { ok: boolean; code: string }>;
    assert.deepEqual(Object.entries(parsed).map(([h, r]) => [h, r.ok, r.code]), [['gone', false, 'OFFLINE'], ['web-1', true, 'OK'], ['web-2', true, 'OK']]);
  });

  it('streams a row per host, then the failures, and times out silent hosts', async () => {
    const result = await strata(['exec', '--all', '--timeout', '500ms', '--batch', '2', 'greet', 'hello world', '-n']);
    assert.equal(result.code, 1, result.stderr);
    const lines = result.stdout.split('\n');
    assert.match(lines[0]!, /^HOST\s+OK\s+CODE\s+DURATION\s+MESSAGE$/);
    assert.match(lines[1]!, /^gone\s+FAIL\s+OFFLINE\s+0ms\s+the agent is not connected$/);
    assert.ok(lines.some((l) => /^web-1\s+OK\s+OK\s+\S+\s+did exec$/.test(l)), result.stdout);
    assert.ok(lines.some((l) => /^mute\s+FAIL\s+TIMEOUT\s/.test(l)), result.stdout);
    assert.match(result.stdout, /\nfailed:\n(gone: OFFLINE: the agent is not connected\nmute: TIMEOUT: no result within 500ms\n|mute: TIMEOUT: no result within 500ms\ngone: OFFLINE: the agent is not connected\n)/);
    assert.match(result.stdout, /\n2 ok, 2 failed of 4 \(order [0-9a-f]{12}\)\n$/);
    const exec = seen.find((o) => o.args.verb === 'exec')!;
    assert.deepEqual(exec.args, { verb: 'exec', name: 'greet', args: ['hello world', '-n'] }, 'arguments travel as an array, untouched');
    await agents['mute']!.waitFor('order-cancel');
  });

  it('manages groups, targets them, and shows what a target picks', async () => {
    const set = await strata(['group', 'set', 'web', '--hosts', 'web-1,web-2']);
    assert.equal(set.code, 0, set.stderr);
    assert.equal(set.stdout, 'group web: web-1,web-2\n');
    assert.equal((await strata(['group', 'set', 'dbs', '--selector', 'role = db'])).code, 0);
    const list = await strata(['group', 'list']);
    assert.match(list.stdout, /^NAME\s+KIND\s+MEMBERS\s+UPDATED\s+BY\ndbs\s+selector\s+role=db\s.*\nweb\s+hosts\s+web-1,web-2\s/);
    assert.equal((await strata(['ping', '--group', 'web'])).code, 0);
    const picked = await strata(['agents', '--group', 'dbs', '--json']);
    assert.deepEqual(JSON.parse(picked.stdout).agents.map((a: { name: string }) => a.name), ['mute']);
    const bySelector = await strata(['agents', '--selector', 'role=web']);
    assert.match(bySelector.stdout, /^NAME.*\ngone\s.*\nweb-1\s.*\nweb-2\s.*\n$/);
    assert.equal((await strata(['group', 'delete', 'dbs'])).code, 0);
    await refused(['group', 'delete', 'dbs'], 1, /^group "dbs" not found$/);
  });

  it('refuses bad targets in one line', async () => {
    await refused(['ping'], 2, /^strata: no target: pass one of --hosts/);
    await refused(['ping', '--all', '--group', 'web'], 2, /^strata: --group and --all given together/);
    await refused(['ping', '--selector', 'role in (web'], 2, /^strata: invalid selector "role in \(web"/);
    await refused(['ping', '--group', 'nope'], 1, /^group "nope" not found$/);
    await refused(['ping', '--hosts', 'web-1,typo'], 1, /^no enrolled agent named typo$/);
    await refused(['ping', '--all', '--timeout', 'soon'], 2, /^strata: invalid duration "soon"/);
    await refused(['sync', '--all', 'www', '--dry-run', '--kill'], 2, /^strata: --dry-run and --kill exclude each other$/);
  });

  it('lists past orders and shows one with its per-host results', async () => {
    await sleep(50);
    const list = await strata(['orders']);
    assert.equal(list.code, 0, list.stderr);
    const rows = list.stdout.trim().split('\n');
    assert.match(rows[0]!, /^ID\s+TIME\s+WHO\s+VERB\s+HOSTS\s+OK\/FAILED$/);
    const exec = rows.find((r) => / exec greet "hello world" -n /.test(r));
    assert.ok(exec, list.stdout);
    assert.match(exec, /\s4\s+2\/2$/);
    const id = exec.split(/\s+/)[0]!;
    const show = await strata(['orders', 'show', id]);
    assert.equal(show.code, 0, show.stderr);
    assert.match(show.stdout, /^id:\s+[0-9a-f]{12}\n/);
    assert.match(show.stdout, /\nmute\s+FAIL\s+TIMEOUT\s/);
    const json = JSON.parse((await strata(['orders', 'show', id, '--json'])).stdout);
    assert.deepEqual(Object.keys(json.results).sort(), ['gone', 'mute', 'web-1', 'web-2']);
    await refused(['orders', 'show', 'nope'], 1, /^order "nope" not found$/);
  });

  it('prints logs as host: line, and follows until Ctrl-C, cancelling on the agents', async () => {
    const logs = await strata(['logs', '--hosts', 'web-1,web-2', '--lines', '2']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /\nweb-1: web-1 old 1\nweb-1: web-1 old 2\n/);
    const child = spawn(process.execPath, [CLI, 'logs', '--hosts', 'web-1,web-2', '--follow'], { env: { PATH: process.env['PATH'] ?? '', HOME: process.env['HOME'] ?? '/tmp', ...server.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    for (let i = 0; i < 200 && !(stdout.includes('web-1: web-1 new 2') && stdout.includes('web-2: web-2 new 2')); i++) await sleep(25);
    assert.match(stdout, /web-2: web-2 new 1\n/);
    child.kill('SIGINT');
    const [code] = await once(child, 'exit');
    assert.equal(code, 0, `Ctrl-C ends a follow normally: ${stdout}`);
    assert.match(stdout, /\n0 ok, 0 failed of 2|2 ok, 0 failed of 2/);
    const cancels = async () => agents['web-1']!.received.filter((m) => m.type === 'order-cancel').length;
    for (let i = 0; i < 100 && (await cancels()) === 0; i++) await sleep(20);
    assert.ok((await cancels()) >= 1, 'the server cancels the followed order on the agents');
  });
});
