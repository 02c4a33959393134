/** The tap that lets the agent unpack a blob while it downloads: contiguity, verification, giving up. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { buffer } from 'node:stream/consumers';
import { ByteTap, TapAbandoned } from '../src/agent/fetch/byte-tap.ts';

const data = Buffer.from('0123456789abcdefghij'.repeat(100));
const sha = createHash('sha256').update(data).digest('hex');

describe('ByteTap', () => {
  it('passes contiguous bytes on, skips what a resumed request repeats, and ends once they verify', async () => {
    const tap = new ByteTap(sha);
    const collected = buffer(tap.stream);
    await tap.offer(data.subarray(0, 700), 0);
    // A resumed request starts before where the tap is: the repeated bytes are skipped.
    await tap.offer(data.subarray(500, 1200), 500);
    await tap.offer(data.subarray(1200), 1200);
    tap.complete();
    assert.deepEqual(await collected, data);
    assert.equal(tap.verified, true);
    assert.equal(tap.abandoned, false);
  });

  it('gives up on a gap, and its stream errors so the caller falls back to the file', async () => {
    const tap = new ByteTap(sha);
    const collected = buffer(tap.stream);
    await tap.offer(data.subarray(0, 100), 0);
    await tap.offer(data.subarray(200, 300), 200);
    assert.equal(tap.abandoned, true);
    await assert.rejects(collected, TapAbandoned);
    tap.complete();
    assert.equal(tap.verified, false, 'an abandoned tap never verifies');
  });

  it('never verifies bytes that do not hash to the blob, even when the download did', async () => {
    const tap = new ByteTap(sha);
    const collected = buffer(tap.stream);
    const wrong = Buffer.from(data);
    wrong[10] = 0x21;
    await tap.offer(wrong, 0);
    tap.complete();
    assert.equal(tap.verified, false);
    assert.equal(tap.abandoned, true);
    await assert.rejects(collected, /do not hash to the blob/);
  });

  it('holds the download back while the reader is slow, and lets go when the reader stops', async () => {
    const tap = new ByteTap(sha);
    const big = Buffer.alloc(8 * 1024 * 1024);
    let resolved = false;
    const offered = tap.offer(big, 0).then(() => (resolved = true));
    await new Promise((resolve) => setTimeout(resolve, 50));
    assert.equal(resolved, false, 'backpressure: nobody reads yet');
    tap.stream.destroy();
    await offered;
    assert.equal(resolved, true);
  });
});
