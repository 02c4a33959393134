/**
 * The part of the Store conformance suite about assignments and the agent fields the fleet
 * feature keeps; `runStoreConformance` registers it, so every backend runs it.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { Store } from './contract.ts';

/** Registers the assignment tests; `current` returns the store of the running test. */
export function assignmentConformance(current: () => Store): void {
  describe('assignments', () => {
    it('adds assignments once, lists them sorted, and deletes them', async () => {
      const store = current();
      const first = await store.putAssignment({ configuration: 'site', selector: 'role=web', actor: 'alice' });
      assert.equal(first.createdBy, 'alice');
      assert.match(first.createdAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
      const again = await store.putAssignment({ configuration: 'site', selector: 'role=web', actor: 'bob' });
      assert.deepEqual(again, first, 'adding an existing assignment keeps the original');
      await store.putAssignment({ configuration: 'db', selector: 'role=db', actor: 'bob' });
      await store.putAssignment({ configuration: 'site', selector: 'region!=eu', actor: 'bob' });
      const listed = await store.listAssignments();
      assert.deepEqual(listed.map((a) => [a.configuration, a.selector]), [['db', 'role=db'], ['site', 'region!=eu'], ['site', 'role=web']]);
      assert.deepEqual(listed[2], first);
      assert.equal(await store.deleteAssignment('site', 'role=web'), true);
      assert.equal(await store.deleteAssignment('site', 'role=web'), false);
      assert.equal(await store.deleteAssignment('nope', 'role=web'), false);
      assert.deepEqual((await store.listAssignments()).map((a) => a.selector), ['role=db', 'region!=eu']);
    });

    it('keeps every agent field, optional ones included', async () => {
      const store = current();
      const record = {
        name: 'edge-1', labels: { role: 'edge' }, tracks: ['site'], enrolledAt: '2024-01-01T00:00:00.000Z',
        publicKey: '-----BEGIN PUBLIC KEY-----\nx\n-----END PUBLIC KEY-----\n', revokedAt: '2024-02-01T00:00:00.000Z',
        inventory: { hostname: 'edge-1' }, status: { site: { phase: 'deployed' } }, lastSeenAt: '2024-01-02T00:00:00.000Z', joinTokenId: '0123456789ab',
      };
      const written = await store.putAgent(record, 0);
      assert.deepEqual(written, { ...record, revision: 1 });
      assert.deepEqual(await store.getAgent('edge-1'), written);
    });
  });
}
