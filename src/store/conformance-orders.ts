/**
 * The part of the Store conformance suite about host groups and fleet orders;
 * `runStoreConformance` registers it, so every backend runs it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { isStrataError } from '../core/errors.ts';
import { ORDER_CONTENT_MAX_BYTES, ORDER_MESSAGE_MAX_CHARS, type Store } from './contract.ts';

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;
const SUMMARY = { ok: 1, failed: 1, offline: 1, timedOut: 0 };

/** Creates an order with default fields. */
function order(store: Store, id: string, keep?: number) {
  return store.createOrder({ id, actor: 'alice', args: { verb: 'ping' }, target: { all: true }, hosts: ['a', 'b'] }, keep === undefined ? undefined : { keep });
}

/** Registers the group and order tests; `current` returns the store of the running test. */
export function orderConformance(current: () => Store): void {
  describe('groups', () => {
    it('creates, replaces, lists sorted and deletes groups', async () => {
      const store = current();
      const web = await store.putGroup({ name: 'web', hosts: ['web-1', 'web-2'], actor: 'alice' });
      assert.deepEqual({ ...web, updatedAt: '' }, { name: 'web', hosts: ['web-1', 'web-2'], updatedAt: '', updatedBy: 'alice' });
      assert.match(web.updatedAt, ISO);
      assert.deepEqual(await store.getGroup('web'), web);
      const replaced = await store.putGroup({ name: 'web', selector: 'role=web', actor: 'bob' });
      assert.equal(replaced.hosts, undefined, 'replacing a group drops its old host list');
      assert.deepEqual(await store.getGroup('web'), replaced);
      await store.putGroup({ name: 'db', hosts: ['db-1'], actor: 'bob' });
      assert.deepEqual((await store.listGroups()).map((g) => g.name), ['db', 'web']);
      assert.equal(await store.deleteGroup('web'), true);
      assert.equal(await store.deleteGroup('web'), false);
      assert.equal(await store.getGroup('web'), undefined);
    });
  });

  describe('orders', () => {
    it('keeps every result of an order to 12,000 hosts (more than one NATS message holds)', async () => {
      const store = current();
      const hosts = Array.from({ length: 12_000 }, (_, i) => `host-${String(i).padStart(5, '0')}`);
      await store.createOrder({ id: 'wide', actor: 'alice', args: { verb: 'ping' }, target: { all: true }, hosts });
      const results = Object.fromEntries(hosts.map((host, i) => [host, { ok: i % 7 !== 0, code: i % 7 === 0 ? 'TIMEOUT' : 'OK', message: `answered by ${host} after a while, with a message long enough to count`, durationMs: i }]));
      const summary = { ok: hosts.length - 1715, failed: 1715, offline: 0, timedOut: 1715 };
      const finished = await store.finishOrder('wide', { summary, results });
      assert.equal(Object.keys(finished.results ?? {}).length, hosts.length);
      const read = await store.getOrder('wide');
      assert.deepEqual(read?.summary, summary);
      assert.equal(Object.keys(read?.results ?? {}).length, hosts.length);
      assert.deepEqual(read?.results?.['host-11999'], results['host-11999']);
      assert.ok(read?.finishedAt);
      const [listed] = await store.listOrders({ limit: 1 });
      assert.equal(listed?.id, 'wide');
      assert.deepEqual(listed?.summary, summary);
      assert.equal(listed?.results, undefined, 'listOrders never carries results');
    });

    it('creates an order, finishes it once, and reads it back', async () => {
      const store = current();
      const created = await order(store, 'o1');
      assert.match(created.createdAt, ISO);
      assert.equal(created.finishedAt, undefined);
      assert.deepEqual(await store.getOrder('o1'), created);
      await assert.rejects(order(store, 'o1'), (e: unknown) => isStrataError(e, 'BAD_REQUEST'));
      const results = {
        a: { ok: true, code: 'OK', message: 'pong', content: { rttMs: 3 }, durationMs: 3 },
        b: { ok: false, code: 'OFFLINE', message: 'agent offline', durationMs: 0 },
      };
      const finished = await store.finishOrder('o1', { summary: SUMMARY, results });
      assert.match(finished.finishedAt!, ISO);
      assert.deepEqual(finished.results, results);
      assert.deepEqual(await store.getOrder('o1'), finished);
      const again = await store.finishOrder('o1', { summary: { ok: 0, failed: 2, offline: 0, timedOut: 2 }, results: {} });
      assert.deepEqual(again, finished, 'finishing twice keeps the first outcome');
      await assert.rejects(store.finishOrder('nope', { summary: SUMMARY, results }), (e: unknown) => isStrataError(e, 'ORDER_NOT_FOUND'));
      assert.equal(await store.getOrder('nope'), undefined);
    });

    it('bounds each host result', async () => {
      const store = current();
      await order(store, 'big');
      const content = { lines: Array.from({ length: 2000 }, (_, i) => `line ${i} ${'é'.repeat(10)}`) };
      const finished = await store.finishOrder('big', { summary: SUMMARY, results: { a: { ok: true, code: 0, message: 'm'.repeat(10_000), content, durationMs: 1 } } });
      const kept = (await store.getOrder('big'))!.results!['a']!;
      assert.deepEqual(kept, finished.results!['a']);
      assert.equal(kept.message.length, ORDER_MESSAGE_MAX_CHARS);
      const preview = kept.content as { truncated: boolean; bytes: number; preview: string };
      assert.equal(preview.truncated, true);
      assert.equal(preview.bytes, Buffer.byteLength(JSON.stringify(content)));
      assert.ok(Buffer.byteLength(preview.preview) <= ORDER_CONTENT_MAX_BYTES + 3);
      assert.equal(kept.code, 0, 'numeric codes (exit statuses) stay numbers');
    });

    it('lists newest first without results, pages with before, and keeps only the newest', async () => {
      const store = current();
      for (const id of ['o1', 'o2', 'o3', 'o4']) await order(store, id, 3);
      await store.finishOrder('o4', { summary: SUMMARY, results: { a: { ok: true, code: 'OK', message: '', durationMs: 1 } } });
      const listed = await store.listOrders({ limit: 10 });
      assert.deepEqual(listed.map((o) => o.id), ['o4', 'o3', 'o2'], 'the oldest beyond keep is removed');
      assert.equal(listed[0]!.results, undefined);
      assert.deepEqual(listed[0]!.summary, SUMMARY);
      assert.equal(await store.getOrder('o1'), undefined);
      assert.deepEqual((await store.listOrders({ limit: 1, before: 'o4' })).map((o) => o.id), ['o3']);
      await assert.rejects(store.listOrders({ limit: 1, before: 'o1' }), (e: unknown) => isStrataError(e, 'ORDER_NOT_FOUND'));
    });
  });
}
