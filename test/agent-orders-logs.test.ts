/**
 * `logs` orders: the agent's own log file (rotated, read back across the rotation), followed
 * until cancelled or the deadline, and the last hook output of a configuration.
 */
import assert from 'node:assert/strict';
import { mkdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import { createAgentLogger } from '../src/agent/agent-log.ts';
import { tailAgentLog } from '../src/agent/orders/logs.ts';
import { writeLastHookLog } from '../src/agent/orders/last-hook-log.ts';
import { orderHarness } from './helpers/agent-orders.ts';
import { tempDir } from './helpers/temp-dir.ts';

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('logs orders', () => {
  it('writes the agent log to DIR/agent.log as well as stderr, and rotates it by size', async (t) => {
    const dir = await tempDir(t);
    const stderr = new PassThrough();
    let echoed = '';
    stderr.on('data', (chunk) => (echoed += String(chunk)));
    const log = createAgentLogger({ dir, level: 'info', maxBytes: 4096, stderr });
    for (let i = 0; i < 100; i++) log.info({ i }, 'line');
    log.debug('below the level');
    assert.match(echoed, /"i":99/);
    assert.ok((await stat(path.join(dir, 'agent.log'))).size <= 4096);
    assert.ok((await stat(path.join(dir, 'agent.log.1'))).size <= 4096);
    const lines = await tailAgentLog(dir, 30);
    assert.equal(lines.length, 30);
    assert.deepEqual(lines.map((line) => JSON.parse(line).i), Array.from({ length: 30 }, (_, k) => 70 + k));
    assert.doesNotMatch(await readFile(path.join(dir, 'agent.log'), 'utf8'), /below the level/);
  });

  it('returns the last lines of the agent log', async (t) => {
    const h = await orderHarness(await tempDir(t), '');
    const result = await h.run({ verb: 'ping' });
    assert.equal(result.ok, true);
    const logs = await h.run({ verb: 'logs', source: 'agent', lines: 1 });
    assert.equal(logs.ok, true);
    const lines = (logs.content as { lines: string[] }).lines;
    assert.equal(lines.length, 1);
    assert.equal(JSON.parse(lines[0]!).msg, 'order answered');
  });

  it('follows the agent log until cancelled, then answers once', async (t) => {
    const dir = await tempDir(t);
    const h = await orderHarness(dir, '');
    const writer = createAgentLogger({ dir, level: 'info', stderr: new PassThrough().resume() });
    const sent = h.send({ verb: 'logs', source: 'agent', lines: 5, follow: true }, { id: 'follow' });
    while (sent.progress.length < 1) await sleep(20);
    writer.info('first followed line');
    writer.info('second followed line');
    const seen = () => sent.progress.flatMap((p) => (p as { lines: string[] }).lines).join('\n');
    while (!seen().includes('second followed line')) await sleep(20);
    h.dispatcher.cancel('follow');
    const result = await sent.result;
    assert.deepEqual([result.ok, result.code], [true, 'OK']);
    assert.ok((result.content as { followed: number }).followed >= 2);
    await sleep(400);
    writer.info('after the cancel');
    await sleep(400);
    assert.doesNotMatch(seen(), /after the cancel/);
    assert.equal(sent.results.length, 1);
  });

  it('stops following at the deadline', async (t) => {
    const h = await orderHarness(await tempDir(t), '');
    const result = await h.run({ verb: 'logs', source: 'agent', follow: true }, { deadlineMs: 600 });
    assert.equal(result.ok, true);
    assert.ok(result.durationMs >= 500 && result.durationMs < 3000, `${result.durationMs} ms`);
  });

  it('returns the last hook output of a configuration, and refuses bad names', async (t) => {
    const dir = await tempDir(t);
    const h = await orderHarness(dir, '');
    await mkdir(path.join(dir, 'site'));
    await writeLastHookLog(path.join(dir, 'site'), 'one\ntwo\nthree\n');
    const result = await h.run({ verb: 'logs', source: 'hook', configuration: 'site', lines: 2 });
    assert.deepEqual(result.content, { lines: ['two', 'three'] });
    const none = await h.run({ verb: 'logs', source: 'hook', configuration: 'other' });
    assert.deepEqual([none.ok, none.content], [true, { lines: [] }]);
    for (const configuration of ['../site', '..', undefined]) {
      const bad = await h.run({ verb: 'logs', source: 'hook', ...(configuration === undefined ? {} : { configuration }) });
      assert.deepEqual([bad.ok, bad.code], [false, 'BAD_ARGUMENT'], String(configuration));
    }
  });
});
