/**
 * The Store conformance suite: the executable form of `contract.ts`. Every backend runs it
 * through a short caller that supplies a harness; a backend is correct when it passes.
 */
import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, it } from 'node:test';
import { configurationId } from '../core/configuration-id.ts';
import { isStrataError } from '../core/errors.ts';
import { applyRetention } from '../core/retention.ts';
import { CLAIM_MAX_TTL_MS, type ComponentVersion, type Configuration, type ConfigurationEvent, type Store } from './contract.ts';
import { assignmentConformance } from './conformance-assignments.ts';
import { orderConformance } from './conformance-orders.ts';
import { importConformance } from './conformance-import.ts';
import { HOUR, sha, chunks, readAll, readOutcome, rejectsWith, assertNothingLeft, addVersion, layerOf, putConfiguration, watchUntil, summary, assertIncreasing, withTimeout } from './conformance-helpers.ts';

/** What a backend's test file gives the suite: a fresh, empty store and ways to damage or reopen it. */
export interface StoreHarness {
  store: Store;
  /** Changes the stored bytes of a blob (same length) behind the store's back, as disk rot would. */
  corruptBlob(sha256: string): Promise<void>;
  /** Closes the harness's current store and opens the same data again. */
  reopen?(): Promise<Store>;
  /** Leaves a staged upload as a crashed upload would, last written `ageMs` ago. */
  plantAbandonedUpload?(ageMs: number): Promise<void>;
  /** Removes everything the harness created; the suite has closed the store before. */
  cleanup(): Promise<void>;
}

const ISO = /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/;

/** Registers the whole suite for one backend. */
export function runStoreConformance(backendName: string, harness: () => Promise<StoreHarness>): void {
  describe(`Store conformance: ${backendName}`, () => {
    let h: StoreHarness;
    let store: Store;
    beforeEach(async () => {
      h = await harness();
      store = h.store;
    });
    afterEach(async () => {
      await store.close();
      await h.cleanup();
    });

    describe('blobs', () => {
      it('stores, describes and reads back a blob', async () => {
        const data = Buffer.from('hello, layered world');
        const info = await store.putBlob(chunks(data.subarray(0, 5), data.subarray(5)));
        assert.deepEqual({ sha256: info.sha256, size: info.size }, { sha256: sha(data), size: data.length });
        assert.match(info.createdAt, ISO);
        assert.deepEqual(await store.statBlob(info.sha256), info);
        const { info: readInfo, stream } = await store.getBlob(info.sha256);
        assert.deepEqual(readInfo, info);
        assert.deepEqual(await readAll(stream), data);
        assert.equal(await store.verifyBlob(info.sha256), true);
        assert.equal(await store.statBlob(sha(Buffer.from('other'))), undefined);
        await rejectsWith(store.getBlob(sha(Buffer.from('other'))), 'BLOB_NOT_FOUND');
        await rejectsWith(store.verifyBlob(sha(Buffer.from('other'))), 'BLOB_NOT_FOUND');
      });

      it('stores an empty blob', async () => {
        const info = await store.putBlob(chunks());
        assert.deepEqual({ sha256: info.sha256, size: info.size }, { sha256: sha(Buffer.alloc(0)), size: 0 });
        assert.equal((await readAll((await store.getBlob(info.sha256)).stream)).length, 0);
      });

      it('reads inclusive byte ranges', async () => {
        const data = Buffer.from('0123456789');
        const { sha256 } = await store.putBlob(chunks(data));
        assert.equal((await readAll((await store.getBlob(sha256, { start: 2, end: 5 })).stream)).toString(), '2345');
        assert.equal((await readAll((await store.getBlob(sha256, { start: 7 })).stream)).toString(), '789');
        assert.equal((await readAll((await store.getBlob(sha256, { start: 0, end: 0 })).stream)).toString(), '0');
      });

      it('keeps one copy of bytes uploaded twice', async () => {
        const first = await store.putBlob(chunks(Buffer.from('same bytes')));
        const second = await store.putBlob(chunks(Buffer.from('same '), Buffer.from('bytes')));
        assert.deepEqual(second, first);
        assert.equal(await store.deleteBlob(first.sha256), true);
        assert.equal(await store.statBlob(first.sha256), undefined);
      });

      it('accepts a matching expectedSha256 and refuses a wrong one, leaving nothing', async () => {
        const data = Buffer.from('checked');
        assert.equal((await store.putBlob(chunks(data), { expectedSha256: sha(data) })).sha256, sha(data));
        const other = Buffer.from('tampered');
        await rejectsWith(store.putBlob(chunks(other), { expectedSha256: sha(Buffer.from('expected')) }), 'HASH_MISMATCH');
        await assertNothingLeft(store, sha(other));
      });

      it('refuses an upload past maxBytes as soon as it is exceeded, leaving nothing', async () => {
        const exact = Buffer.alloc(16, 1);
        assert.equal((await store.putBlob(chunks(exact), { maxBytes: 16 })).size, 16);
        let pulled = 0;
        async function* endless(): AsyncGenerator<Uint8Array> {
          for (let i = 0; i < 1000; i += 1) {
            pulled += 1;
            yield Buffer.alloc(8, 2);
          }
        }
        await rejectsWith(store.putBlob(endless(), { maxBytes: 20 }), 'PAYLOAD_TOO_LARGE');
        assert.ok(pulled <= 4, `read ${pulled} chunks of 8 bytes for a 20-byte limit`);
        await assertNothingLeft(store, sha(Buffer.alloc(24, 2)));
      });

      it('lets beforeCommit read the staged bytes before they are visible', async () => {
        const data = Buffer.from('staged archive bytes');
        let seen: { visible: boolean; whole: string; range: string } | undefined;
        const info = await store.putBlob(chunks(data), {
          beforeCommit: async (staged) => {
            assert.deepEqual({ sha256: staged.sha256, size: staged.size }, { sha256: sha(data), size: data.length });
            seen = {
              visible: (await store.statBlob(staged.sha256)) !== undefined,
              whole: (await readAll(staged.read())).toString(),
              range: (await readAll(staged.read({ start: 7, end: 13 }))).toString(),
            };
          },
        });
        assert.deepEqual(seen, { visible: false, whole: data.toString(), range: 'archive' });
        assert.equal(info.sha256, sha(data));
      });

      it('discards the upload when beforeCommit throws, rejecting with its error', async () => {
        const data = Buffer.from('not an archive');
        const refusal = new Error('refused by inspection');
        await assert.rejects(store.putBlob(chunks(data), { beforeCommit: async () => Promise.reject(refusal) }), (error) => error === refusal);
        await assertNothingLeft(store, sha(data));
      });

      it('leaves nothing when the source stream fails midway', async () => {
        const failure = new Error('connection reset');
        async function* broken(): AsyncGenerator<Uint8Array> {
          yield Buffer.alloc(4096, 3);
          yield Buffer.alloc(4096, 4);
          throw failure;
        }
        await assert.rejects(store.putBlob(broken()), (error) => error === failure);
        await assertNothingLeft(store, sha(Buffer.concat([Buffer.alloc(4096, 3), Buffer.alloc(4096, 4)])));
      });

      it('never serves a corrupt blob as valid: full read, range read, verifyBlob', async () => {
        const data = Buffer.alloc(300_000, 7);
        const { sha256 } = await store.putBlob(chunks(data));
        await h.corruptBlob(sha256);
        const full = await readOutcome(store.getBlob(sha256));
        assert.ok(isStrataError(full.error, 'BLOB_CORRUPT'), `full read ended with ${String(full.error)}`);
        assert.ok(full.bytes < data.length, 'every byte of a corrupt blob was delivered');
        const ranged = await readOutcome(store.getBlob(sha256, { start: 0, end: 9 }));
        assert.ok(isStrataError(ranged.error, 'BLOB_CORRUPT'), `range read ended with ${String(ranged.error)}`);
        assert.equal(await store.verifyBlob(sha256), false);
      });

      it('notices corruption after an earlier successful range read', async () => {
        const { sha256 } = await store.putBlob(chunks(Buffer.alloc(1000, 9)));
        assert.equal((await readAll((await store.getBlob(sha256, { start: 10, end: 19 })).stream)).length, 10);
        await h.corruptBlob(sha256);
        const ranged = await readOutcome(store.getBlob(sha256, { start: 10, end: 19 }));
        assert.ok(isStrataError(ranged.error, 'BLOB_CORRUPT'), `range read ended with ${String(ranged.error)}`);
      });

      it('deletes an unused blob, reports an absent one, refuses one a version names', async () => {
        const free = await store.putBlob(chunks(Buffer.from('free')));
        assert.equal(await store.deleteBlob(free.sha256), true);
        assert.equal(await store.statBlob(free.sha256), undefined);
        assert.equal(await store.deleteBlob(free.sha256), false);
        const used = await addVersion(store, 'app', '1');
        await rejectsWith(store.deleteBlob(used.blob), 'IN_USE');
        assert.ok(await store.statBlob(used.blob));
      });
    });

    describe('components and versions', () => {
      it('adds immutable versions of existing blobs', async () => {
        const added = await addVersion(store, 'app', '1.0', 'payload');
        assert.deepEqual(
          { ...added, createdAt: '' },
          { component: 'app', version: '1.0', blob: sha(Buffer.from('payload')), size: 7, createdAt: '', createdBy: 'tester' },
        );
        assert.match(added.createdAt, ISO);
        assert.deepEqual(await store.getVersion('app', '1.0'), added);
        assert.equal(await store.getVersion('app', '2.0'), undefined);
        await rejectsWith(store.addVersion({ component: 'app', version: '1.0', blob: added.blob, actor: 'x' }), 'VERSION_EXISTS');
        await rejectsWith(store.addVersion({ component: 'app', version: '2.0', blob: sha(Buffer.from('nope')), actor: 'x' }), 'BLOB_NOT_FOUND');
        assert.deepEqual(await store.listVersions('app'), [added]);
      });

      it('lists versions oldest first and components by name', async () => {
        for (const version of ['2', '10', '1']) await addVersion(store, 'web', version);
        await addVersion(store, 'api', '1');
        assert.deepEqual((await store.listVersions('web')).map((v) => v.version), ['2', '10', '1']);
        await rejectsWith(store.listVersions('ghost'), 'COMPONENT_NOT_FOUND');
        const summaries = await store.listComponents();
        assert.deepEqual(summaries.map((s) => [s.name, s.versionCount, s.latest.version]), [['api', 1, '1'], ['web', 3, '1']]);
      });

      it('deletes versions, keeping the blob until sweep; the last one takes the component along', async () => {
        const v1 = await addVersion(store, 'app', '1');
        await rejectsWith(store.deleteVersion('app', '9'), 'VERSION_NOT_FOUND');
        await store.deleteVersion('app', '1');
        assert.equal(await store.getVersion('app', '1'), undefined);
        assert.ok(await store.statBlob(v1.blob));
        await rejectsWith(store.listVersions('app'), 'COMPONENT_NOT_FOUND');
        assert.deepEqual(await store.listComponents(), []);
        await rejectsWith(store.deleteComponent('app'), 'COMPONENT_NOT_FOUND');
      });

      it('refuses to delete what a current revision uses, all or nothing', async () => {
        const old = await addVersion(store, 'app', '1');
        const used = await addVersion(store, 'app', '2');
        const cfg = await putConfiguration(store, 'prod', [old], 0);
        await putConfiguration(store, 'prod', [used], cfg.revision);
        await putConfiguration(store, 'stage', [used], 0);
        const inUse = await rejectsWith(store.deleteVersion('app', '2'), 'IN_USE');
        assert.deepEqual(inUse.details?.['configurations'], ['prod', 'stage']);
        const componentInUse = await rejectsWith(store.deleteComponent('app'), 'IN_USE');
        assert.deepEqual(componentInUse.details?.['configurations'], ['prod', 'stage']);
        assert.equal((await store.listVersions('app')).length, 2);
        await store.deleteVersion('app', '1');
        await store.deleteConfiguration('prod', { actor: 'tester' });
        await store.deleteConfiguration('stage', { actor: 'tester' });
        await store.deleteComponent('app');
        assert.deepEqual(await store.listComponents(), []);
      });
    });

    describe('configurations', () => {
      it('creates, reads and lists configurations', async () => {
        const v = await addVersion(store, 'app', '1');
        const created = await putConfiguration(store, 'prod', [v], 0, { settings: { hook: 'run' }, note: 'first' });
        assert.equal(created.revision, 1);
        assert.ok(created.seq > 0);
        assert.deepEqual(created.layers, [layerOf(v)]);
        assert.equal(created.id, configurationId([v.blob], { hook: 'run' }));
        assert.deepEqual([created.settings, created.note, created.updatedBy], [{ hook: 'run' }, 'first', 'tester']);
        assert.match(created.updatedAt, ISO);
        assert.deepEqual(await store.getConfiguration('prod'), created);
        assert.equal(await store.getConfiguration('dev'), undefined);
        const other = await putConfiguration(store, 'dev', [v], 0);
        assert.deepEqual(await store.listConfigurations(), [other, created]);
      });

      it('compare-and-set: create twice, stale revisions and missing versions write nothing', async () => {
        const v = await addVersion(store, 'app', '1');
        const first = await putConfiguration(store, 'prod', [v], 0);
        await rejectsWith(putConfiguration(store, 'prod', [v], 0), 'CONFIGURATION_EXISTS');
        const second = await putConfiguration(store, 'prod', [v], 1);
        await rejectsWith(putConfiguration(store, 'prod', [v], 1), 'REVISION_CONFLICT');
        await rejectsWith(putConfiguration(store, 'absent', [v], 3), 'REVISION_CONFLICT');
        const ghost: ComponentVersion = { ...v, component: 'ghost' };
        const missing = await rejectsWith(putConfiguration(store, 'prod', [v, ghost], 2), 'VERSION_NOT_FOUND');
        assert.deepEqual([missing.details?.['component'], missing.details?.['version']], ['ghost', '1']);
        assert.deepEqual(await store.getConfiguration('prod'), second);
        assert.deepEqual((await store.configurationHistory('prod')).map((c) => c.revision), [1, 2]);
        assert.equal(await store.getConfiguration('absent'), undefined);
        assert.ok(second.seq > first.seq);
      });

      it('lets exactly one of two concurrent writers from the same read win', async () => {
        const [a, b] = [await addVersion(store, 'app', 'a'), await addVersion(store, 'app', 'b')];
        const read = await putConfiguration(store, 'prod', [a], 0);
        const results = await Promise.allSettled([
          putConfiguration(store, 'prod', [a], read.revision, { note: 'writer a' }),
          putConfiguration(store, 'prod', [b], read.revision, { note: 'writer b' }),
        ]);
        const won = results.filter((r) => r.status === 'fulfilled');
        const lost = results.filter((r) => r.status === 'rejected');
        assert.equal(won.length, 1);
        assert.ok(lost.length === 1 && isStrataError(lost[0]?.reason, 'REVISION_CONFLICT'));
        assert.deepEqual(await store.getConfiguration('prod'), won[0]?.value);
        const creators = await Promise.allSettled([putConfiguration(store, 'new', [a], 0), putConfiguration(store, 'new', [b], 0)]);
        assert.equal(creators.filter((r) => r.status === 'fulfilled').length, 1);
        assert.ok(creators.some((r) => r.status === 'rejected' && isStrataError(r.reason, 'CONFIGURATION_EXISTS')));
      });

      it('keeps every revision with strictly increasing store-wide seqs', async () => {
        const v = await addVersion(store, 'app', '1');
        const writes: Configuration[] = [];
        for (const [name, expected] of [['a', 0], ['b', 0], ['a', 1], ['a', 2], ['b', 1]] as const) {
          writes.push(await putConfiguration(store, name, [v], expected, { note: `${name}@${expected}` }));
        }
        const seqs = writes.map((w) => w.seq);
        assert.deepEqual([...seqs].sort((x, y) => x - y), seqs);
        assert.equal(new Set(seqs).size, seqs.length);
        const history = await store.configurationHistory('a');
        assert.deepEqual(history.map((c) => [c.revision, c.note]), [[1, 'a@0'], [2, 'a@1'], [3, 'a@2']]);
        assert.deepEqual(history, writes.filter((w) => w.name === 'a'));
        await rejectsWith(store.configurationHistory('zzz'), 'CONFIGURATION_NOT_FOUND');
      });

      it('deletes a configuration and its history; writing it again starts at revision 1', async () => {
        const v = await addVersion(store, 'app', '1');
        await rejectsWith(store.deleteConfiguration('prod', { actor: 'tester' }), 'CONFIGURATION_NOT_FOUND');
        await putConfiguration(store, 'prod', [v], 0);
        const latest = await putConfiguration(store, 'prod', [v], 1);
        await rejectsWith(store.deleteConfiguration('prod', { expectedRevision: 1, actor: 'tester' }), 'REVISION_CONFLICT');
        assert.ok(await store.getConfiguration('prod'));
        await store.deleteConfiguration('prod', { expectedRevision: 2, actor: 'tester' });
        assert.equal(await store.getConfiguration('prod'), undefined);
        await rejectsWith(store.configurationHistory('prod'), 'CONFIGURATION_NOT_FOUND');
        const again = await putConfiguration(store, 'prod', [v], 0);
        assert.equal(again.revision, 1);
        assert.ok(again.seq > latest.seq + 1, 'the delete must take a seq of its own');
        assert.equal((await store.configurationHistory('prod')).length, 1);
      });
    });

    describe('watchConfigurations', () => {
      it('replays the current state compacted from 0, then live events', async () => {
        const v = await addVersion(store, 'app', '1');
        await putConfiguration(store, 'a', [v], 0);
        await putConfiguration(store, 'b', [v], 0);
        await putConfiguration(store, 'a', [v], 1);
        await putConfiguration(store, 'c', [v], 0);
        await store.deleteConfiguration('c', { actor: 'tester' });
        const events = await watchUntil(store, 0, 'sentinel', (seen) => (seen === 0 ? putConfiguration(store, 'sentinel', [v], 0) : undefined));
        assert.deepEqual(events.map(summary), [['put', 'b', 1], ['put', 'a', 2], ['put', 'sentinel', 1]]);
        assertIncreasing(events);
        const a = events[1];
        assert.deepEqual(a?.type === 'put' ? a.configuration : undefined, await store.getConfiguration('a'));
      });

      it('resumes after a seq with only later changes, deletions included', async () => {
        const v = await addVersion(store, 'app', '1');
        await putConfiguration(store, 'a', [v], 0);
        const mark = await putConfiguration(store, 'b', [v], 0);
        await putConfiguration(store, 'a', [v], 1);
        await putConfiguration(store, 'a', [v], 2);
        await store.deleteConfiguration('b', { actor: 'tester' });
        const events = await watchUntil(store, mark.seq, 'sentinel', (seen) => (seen === 0 ? putConfiguration(store, 'sentinel', [v], 0) : undefined));
        assert.deepEqual(events.map(summary), [['put', 'a', 3], ['delete', 'b', null], ['put', 'sentinel', 1]]);
        assertIncreasing(events);
        assert.ok(events.every((e) => e.seq > mark.seq));
      });

      it('delivers live events in order without gaps or duplicates at the seam', async () => {
        const v = await addVersion(store, 'app', '1');
        await putConfiguration(store, 'a', [v], 0);
        const events = await watchUntil(store, 0, 'end', async (seen) => {
          if (seen !== 1) return;
          await putConfiguration(store, 'a', [v], 1);
          await putConfiguration(store, 'b', [v], 0);
          await store.deleteConfiguration('b', { actor: 'tester' });
          await putConfiguration(store, 'end', [v], 0);
        });
        assert.deepEqual(events.map(summary), [['put', 'a', 1], ['put', 'a', 2], ['put', 'b', 1], ['delete', 'b', null], ['put', 'end', 1]]);
        assertIncreasing(events);
      });

      it('ends iteration when the signal aborts, while waiting or already aborted', async () => {
        const v = await addVersion(store, 'app', '1');
        await putConfiguration(store, 'a', [v], 0);
        const controller = new AbortController();
        const received: ConfigurationEvent[] = [];
        const done = (async () => {
          for await (const event of store.watchConfigurations({ afterSeq: 0, signal: controller.signal })) {
            received.push(event);
            if (received.length === 1) setTimeout(() => controller.abort(), 20);
          }
        })();
        await withTimeout(done, 5000, 'the watch did not end after abort');
        assert.deepEqual(received.map(summary), [['put', 'a', 1]]);
        const none: ConfigurationEvent[] = [];
        for await (const event of store.watchConfigurations({ afterSeq: 0, signal: AbortSignal.abort() })) none.push(event);
        assert.deepEqual(none, []);
      });
    });

    describe('retention', () => {
      it('keeps the newest versions and what configurations use, and sweeps old garbage only', async () => {
        const versions: ComponentVersion[] = [];
        for (const version of ['1', '2', '3', '4']) versions.push(await addVersion(store, 'app', version));
        await putConfiguration(store, 'prod', [versions[0] as ComponentVersion], 0);
        const stray = await store.putBlob(chunks(Buffer.from('uploaded, never added')));
        const fresh = await applyRetention(store, { maxVersions: 2, graceMs: HOUR });
        assert.deepEqual(fresh.versionsDeleted, [{ component: 'app', version: '2' }]);
        assert.deepEqual(fresh.versionsKeptInUse, [{ component: 'app', version: '1', configurations: ['prod'] }]);
        assert.deepEqual(fresh.blobsDeleted, [], 'blobs inside the grace period must survive');
        assert.deepEqual((await store.listVersions('app')).map((v) => v.version), ['1', '3', '4']);
        const later = await applyRetention(store, { maxVersions: 2, graceMs: HOUR, now: new Date(Date.now() + 2 * HOUR) });
        assert.deepEqual(later.versionsDeleted, []);
        assert.deepEqual([...later.blobsDeleted].sort(), [versions[1]?.blob, stray.sha256].sort());
        assert.equal(await store.statBlob(stray.sha256), undefined);
        for (const kept of [versions[0], versions[2], versions[3]]) assert.ok(await store.statBlob(kept?.blob ?? ''));
        await rejectsWith(applyRetention(store, { maxVersions: 0, graceMs: HOUR }), 'BAD_REQUEST');
      });

      it('removes uploads abandoned longer than the grace period', async (t) => {
        if (!h.plantAbandonedUpload) return t.skip(`${backendName} cannot plant an abandoned upload`);
        await h.plantAbandonedUpload(2 * HOUR);
        assert.equal((await applyRetention(store, { maxVersions: 1, graceMs: 3 * HOUR })).uploadsRemoved, 0);
        assert.equal((await applyRetention(store, { maxVersions: 1, graceMs: HOUR })).uploadsRemoved, 1);
        assert.equal((await store.sweep({ graceMs: 0, now: new Date(Date.now() + HOUR) })).uploadsRemoved, 0);
      });
    });

    describe('tokens, agents, audit and state', () => {
      it('stores tokens by id, lists them oldest first, revokes once', async () => {
        const base = { kind: 'api', role: 'admin', secretHash: sha(Buffer.from('s')), createdAt: '2024-01-01T00:00:00.000Z', createdBy: 'root' } as const;
        await store.createToken({ ...base, id: 'tok2', name: 'second' });
        await store.createToken({ ...base, id: 'tok1', name: 'first', kind: 'join', role: 'agent', expiresAt: '2030-01-01T00:00:00.000Z' });
        await rejectsWith(store.createToken({ ...base, id: 'tok2', name: 'dup' }), 'BAD_REQUEST');
        assert.deepEqual((await store.listTokens()).map((t) => t.id), ['tok2', 'tok1']);
        assert.equal((await store.getToken('tok1'))?.expiresAt, '2030-01-01T00:00:00.000Z');
        assert.equal(await store.getToken('nope'), undefined);
        const revoked = await store.revokeToken('tok2', '2024-02-01T00:00:00.000Z');
        assert.equal(revoked.revokedAt, '2024-02-01T00:00:00.000Z');
        assert.equal((await store.revokeToken('tok2', '2024-03-01T00:00:00.000Z')).revokedAt, '2024-02-01T00:00:00.000Z');
        assert.deepEqual(await store.getToken('tok2'), revoked);
        await rejectsWith(store.revokeToken('nope', '2024-02-01T00:00:00.000Z'), 'TOKEN_NOT_FOUND');
      });

      it('writes agents with compare-and-set', async () => {
        const agent = { name: 'web-1', labels: { role: 'web' }, tracks: ['prod'], enrolledAt: '2024-01-01T00:00:00.000Z' };
        const created = await store.putAgent(agent, 0);
        assert.equal(created.revision, 1);
        await rejectsWith(store.putAgent(agent, 0), 'REVISION_CONFLICT');
        const updated = await store.putAgent({ ...agent, status: { phase: 'ok' } }, 1);
        assert.equal(updated.revision, 2);
        await rejectsWith(store.putAgent(agent, 1), 'REVISION_CONFLICT');
        await store.putAgent({ ...agent, name: 'db-1' }, 0);
        assert.deepEqual(await store.getAgent('web-1'), updated);
        assert.deepEqual((await store.listAgents()).map((a) => a.name), ['db-1', 'web-1']);
        assert.equal(await store.getAgent('nope'), undefined);
      });

      it('appends audit entries and pages through them oldest first', async () => {
        const entries = [];
        for (let i = 1; i <= 5; i += 1) {
          entries.push(await store.appendAudit({ actor: 'root', action: 'test.act', target: `t${i}`, result: 'ok', details: { i } }));
        }
        const stamped = await store.appendAudit({ actor: 'server', action: 'x', target: 't6', result: 'IN_USE', at: '2024-01-01T00:00:00.000Z' });
        assert.equal(stamped.at, '2024-01-01T00:00:00.000Z');
        assert.match(entries[0]?.at ?? '', ISO);
        const seqs = [...entries, stamped].map((e) => e.seq);
        assert.ok(seqs.every((s, i) => i === 0 || s > (seqs[i - 1] ?? Infinity)));
        const targets = (list: { target: string }[]): string[] => list.map((e) => e.target);
        assert.deepEqual(targets(await store.listAudit({ limit: 2 })), ['t1', 't2']);
        assert.deepEqual(targets(await store.listAudit({ limit: 2, afterSeq: entries[1]?.seq ?? 0 })), ['t3', 't4']);
        assert.deepEqual(targets(await store.listAudit({ limit: 2, newest: true })), ['t5', 't6']);
        assert.deepEqual(targets(await store.listAudit({ limit: 10, newest: true, afterSeq: entries[3]?.seq ?? 0 })), ['t5', 't6']);
        assert.deepEqual((await store.listAudit({ limit: 1 }))[0], entries[0]);
      });

      it('stores state once, even when first writes race', async () => {
        assert.equal(await store.getState('ca'), undefined);
        const raced = await Promise.all([store.putStateIfAbsent('ca', 'one'), store.putStateIfAbsent('ca', 'two')]);
        assert.equal(raced[0], raced[1]);
        assert.equal(await store.putStateIfAbsent('ca', 'three'), raced[0]);
        assert.equal(await store.getState('ca'), raced[0]);
      });

      it('claims a key once, across concurrent callers, and refuses keys and lifetimes it cannot keep', async () => {
        const key = 'ab'.repeat(64);
        const raced = await Promise.all([store.claimOnce(key, 60_000), store.claimOnce(key, 60_000), store.claimOnce(key, 1000)]);
        assert.deepEqual(raced.filter(Boolean).length, 1, `exactly one caller claims it: ${JSON.stringify(raced)}`);
        assert.equal(await store.claimOnce(key, 60_000), false);
        assert.equal(await store.claimOnce('cd'.repeat(64), 60_000), true, 'another key is its own');
        await assert.rejects(store.claimOnce('a.b', 1000), /invalid claim key/);
        await assert.rejects(store.claimOnce('', 1000), /invalid claim key/);
        await assert.rejects(store.claimOnce('k', 0), /a claim lasts/);
        await assert.rejects(store.claimOnce('k', CLAIM_MAX_TTL_MS + 1), /a claim lasts/);
        assert.equal(await store.claimOnce('k', CLAIM_MAX_TTL_MS), true, 'the refused attempts claimed nothing');
      });
    });

    assignmentConformance(() => store);
    orderConformance(() => store);
    importConformance(() => store);

    describe('durability', () => {
      it('keeps everything across a reopen and continues its sequences', async (t) => {
        if (!h.reopen) return t.skip(`${backendName} has no reopen`);
        const v = await addVersion(store, 'app', '1', 'durable bytes');
        const cfg = await putConfiguration(store, 'prod', [v], 0);
        await store.createToken({ id: 't', kind: 'api', role: 'viewer', name: 'n', secretHash: 'h', createdAt: cfg.updatedAt, createdBy: 'r' });
        const agent = await store.putAgent({ name: 'a', labels: {}, tracks: [], enrolledAt: cfg.updatedAt }, 0);
        const audit = await store.appendAudit({ actor: 'r', action: 'a', target: 't', result: 'ok' });
        await store.putStateIfAbsent('k', 'v');
        assert.equal(await store.claimOnce('durable-claim', 60_000), true);
        store = await h.reopen();
        assert.equal(await store.claimOnce('durable-claim', 60_000), false, 'a claim outlives a restart');
        assert.deepEqual(await store.getVersion('app', '1'), v);
        assert.equal((await readAll((await store.getBlob(v.blob)).stream)).toString(), 'durable bytes');
        assert.deepEqual(await store.getConfiguration('prod'), cfg);
        assert.equal((await store.getToken('t'))?.name, 'n');
        assert.deepEqual(await store.getAgent('a'), agent);
        assert.deepEqual(await store.listAudit({ limit: 10 }), [audit]);
        assert.equal(await store.getState('k'), 'v');
        assert.ok((await putConfiguration(store, 'prod', [v], 1)).seq > cfg.seq);
        assert.ok((await store.appendAudit({ actor: 'r', action: 'a', target: 't', result: 'ok' })).seq > audit.seq);
      });

      it('closes idempotently', async () => {
        await store.close();
        await store.close();
      });
    });
  });
}
