/**
 * The part of the Store conformance suite about migration (`importRecord`, `listState`);
 * `runStoreConformance` registers it, so every backend runs it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Configuration, Store } from './contract.ts';
import { addVersion, chunks, layerOf, putConfiguration, rejectsWith, watchUntil, summary } from './conformance-helpers.ts';

const OLD = '2020-01-02T03:04:05.678Z';

/** Registers the import tests; `current` returns the store of the running test. */
export function importConformance(current: () => Store): void {
  describe('import (migration)', () => {
    it('imports versions as given, under addVersion’s rules', async () => {
      const store = current();
      const blob = await store.putBlob(chunks(Buffer.from('imported bytes')));
      const version = { component: 'app', version: '1', blob: blob.sha256, size: blob.size, createdAt: OLD, createdBy: 'alice' };
      await store.importRecord({ kind: 'version', version });
      assert.deepEqual(await store.getVersion('app', '1'), version);
      await rejectsWith(store.importRecord({ kind: 'version', version }), 'VERSION_EXISTS');
      await rejectsWith(store.importRecord({ kind: 'version', version: { ...version, version: '2', blob: 'f'.repeat(64) } }), 'BLOB_NOT_FOUND');
      await addVersion(store, 'app', '3');
      assert.deepEqual((await store.listVersions('app')).map((v) => v.version), ['1', '3']);
    });

    it('imports a history with its revision numbers, ids, times and notes, then continues it', async () => {
      const store = current();
      const kept = await addVersion(store, 'app', 'kept');
      const revision = (n: number, extra: Partial<Configuration> = {}): Omit<Configuration, 'seq'> => ({
        name: 'prod', revision: n, id: `id-${n}`, layers: [layerOf(kept)], updatedAt: OLD, updatedBy: 'bob', note: `r${n}`, ...extra,
      });
      // A historic revision may name a version deleted since; only the last one must exist.
      const gone = { ...layerOf(kept), version: 'deleted-long-ago' };
      await store.importRecord({ kind: 'history', revisions: [revision(1, { layers: [gone] }), revision(2, { settings: { hook: 'x' } })] });
      await rejectsWith(store.importRecord({ kind: 'history', revisions: [revision(4)] }), 'REVISION_CONFLICT');
      await rejectsWith(store.importRecord({ kind: 'history', revisions: [revision(3, { layers: [gone] })] }), 'VERSION_NOT_FOUND');
      await store.importRecord({ kind: 'history', revisions: [revision(3)] });
      const history = await store.configurationHistory('prod');
      assert.deepEqual(history.map((c) => [c.revision, c.id, c.note, c.updatedAt, c.updatedBy]), [1, 2, 3].map((n) => [n, `id-${n}`, `r${n}`, OLD, 'bob']));
      assert.deepEqual(history[1]?.settings, { hook: 'x' });
      assert.ok(history.every((c, i) => i === 0 || c.seq > (history[i - 1]?.seq ?? Infinity)));
      const next = await putConfiguration(store, 'prod', [kept], 3);
      assert.equal(next.revision, 4);
      await rejectsWith(store.deleteVersion('app', 'kept'), 'IN_USE');
      const events = await watchUntil(store, 0, 'prod', () => undefined);
      assert.deepEqual(events.map(summary), [['put', 'prod', 4]]);
    });

    it('imports agents, assignments and groups as given, and lists server state', async () => {
      const store = current();
      const agent = { name: 'web-1', revision: 7, labels: { role: 'web' }, tracks: ['prod'], enrolledAt: OLD, lastSeenAt: OLD };
      await store.importRecord({ kind: 'agent', agent });
      assert.deepEqual(await store.getAgent('web-1'), agent);
      await rejectsWith(store.importRecord({ kind: 'agent', agent }), 'REVISION_CONFLICT');
      assert.equal((await store.putAgent(agent, 7)).revision, 8);
      const assignment = { configuration: 'prod', selector: 'role=web', createdAt: OLD, createdBy: 'carol' };
      await store.importRecord({ kind: 'assignment', assignment });
      assert.deepEqual(await store.listAssignments(), [assignment]);
      const group = { name: 'web', hosts: ['web-1'], updatedAt: OLD, updatedBy: 'dave' };
      await store.importRecord({ kind: 'group', group });
      assert.deepEqual(await store.getGroup('web'), group);
      assert.deepEqual(await store.listState(), {});
      await store.putStateIfAbsent('b', '2');
      await store.putStateIfAbsent('a', '1');
      assert.deepEqual(await store.listState(), { a: '1', b: '2' });
    });
  });
}
