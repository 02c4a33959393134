/** The agent's retry waits (src/lib/backoff.ts): exponential, capped, jittered, and never a busy loop. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fullJitter, MIN_RETRY_MS, retryDelay } from '../src/lib/backoff.ts';

describe('backoff', () => {
  it('doubles a failed deploy\'s wait up to the cap, half of it fixed and half random', () => {
    assert.equal(retryDelay(1, 1000, 60_000, () => 0), 500);
    assert.equal(retryDelay(1, 1000, 60_000, () => 1), 1000);
    assert.equal(retryDelay(3, 1000, 60_000, () => 0), 2000);
    assert.equal(retryDelay(40, 1000, 60_000, () => 1), 60_000);
  });

  it('never waits less than MIN_RETRY_MS before retrying a deploy, even with a zero base or cap', () => {
    assert.equal(MIN_RETRY_MS, 100);
    assert.equal(retryDelay(1, 0, 0, () => 0), MIN_RETRY_MS);
    assert.equal(retryDelay(5, 10, 0, () => 1), MIN_RETRY_MS);
    assert.equal(retryDelay(1, 150, 150, () => 0), MIN_RETRY_MS, '75 ms of wait is raised to the floor');
  });

  it('spreads reconnects over the whole capped window', () => {
    assert.equal(fullJitter(0, 1000, 30_000, () => 0.5), 500);
    assert.equal(fullJitter(10, 1000, 30_000, () => 0.999), 29_970);
  });
});
