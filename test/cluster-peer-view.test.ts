/** The rules of the replicas' presence bookkeeping: newest session wins, digests catch lost messages, silent peers vanish whole. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { ClaimSet, PeerView, newerClaim } from '../src/server/cluster/peer-view.ts';

describe('peer view', () => {
  it('holds an agent by its newest session, the same whichever order the claims arrive in', () => {
    const claims: [string, { session: string; connectedAt: number }][] = [['r1', { session: 'a', connectedAt: 100 }], ['r2', { session: 'b', connectedAt: 200 }], ['r3', { session: 'c', connectedAt: 200 }]];
    const forward = new PeerView(1000);
    const backward = new PeerView(1000);
    for (const [replica, claim] of claims) forward.claim(replica, 'x', claim, 0);
    for (const [replica, claim] of [...claims].reverse()) backward.claim(replica, 'x', claim, 0);
    assert.equal(forward.holder('x')?.replica, 'r3', 'equal times fall back to the session id');
    assert.equal(backward.holder('x')?.replica, 'r3');
    assert.equal(newerClaim({ session: 'a', connectedAt: 2 }, { session: 'z', connectedAt: 1 }), true);
    forward.release('r3', 'x', 'not-c');
    assert.equal(forward.holder('x')?.replica, 'r3', 'a release of another session changes nothing');
    forward.release('r3', 'x', 'c');
    assert.equal(forward.holder('x')?.replica, 'r2');
  });

  it('detects a lost message through the announced digest and count', () => {
    const sender = new ClaimSet();
    const view = new PeerView(1000);
    for (const [agent, session] of [['x', 's1'], ['y', 's2']] as const) {
      sender.set(agent, { session, connectedAt: 1 });
      view.claim('r1', agent, { session, connectedAt: 1 }, 0);
    }
    assert.equal(view.beat('r1', { digest: sender.digest, count: sender.size }, 0), false);
    sender.delete('y');
    assert.equal(view.beat('r1', { digest: sender.digest, count: sender.size }, 0), true, 'the release of y was lost');
    view.replace('r1', sender.claims, 0);
    assert.equal(view.beat('r1', { digest: sender.digest, count: sender.size }, 0), false);
    assert.equal(view.holder('y'), undefined);
    const empty = new ClaimSet();
    assert.equal(empty.digest, '0000000000000000');
    sender.delete('x');
    assert.equal(sender.digest, empty.digest, 'the digest depends only on the claims held');
  });

  it('lists peers silent past the expiry, and dropping one removes all its claims', () => {
    const view = new PeerView(500);
    view.claim('r1', 'x', { session: 's', connectedAt: 1 }, 0);
    view.claim('r2', 'y', { session: 't', connectedAt: 1 }, 0);
    view.beat('r2', { digest: '0', count: 1 }, 400);
    assert.deepEqual(view.silent(500), []);
    assert.deepEqual(view.silent(501), ['r1']);
    assert.deepEqual(view.drop('r1'), ['x']);
    assert.equal(view.holder('x'), undefined);
    assert.equal(view.agentCount(), 1);
    assert.deepEqual(view.replicas(), ['r2']);
  });
});
