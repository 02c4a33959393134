/** The tap that lets the agent unpack a blob while it downloads: one uninterrupted request, verification by the download, giving up. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { buffer } from 'node:stream/consumers';
import { ByteTap, TapAbandoned } from '../src/agent/fetch/byte-tap.ts';

const data = Buffer.from('0123456789abcdefghij'.repeat(100));

describe('ByteTap', () => {
  it('passes one request\'s bytes on and ends once the download verified them', async () => {
    let passedAll = 0;
    const tap = new ByteTap(data.length, () => (passedAll += 1));
    const collected = buffer(tap.stream);
    await tap.offer(data.subarray(0, 700), 0);
    await tap.offer(data.subarray(700, 1200), 700);
    assert.equal(passedAll, 0, 'not before the last byte');
    await tap.offer(data.subarray(1200), 1200);
    assert.equal(passedAll, 1, 'told once the last byte went to the reader, before the download verified it');
    tap.complete();
    assert.deepEqual(await collected, data);
    assert.equal(passedAll, 1);
    assert.equal(tap.verified, true);
    assert.equal(tap.abandoned, false);
  });

  it('gives up on a gap, and its stream errors so the caller falls back to the file', async () => {
    let passedAll = false;
    const tap = new ByteTap(data.length, () => (passedAll = true));
    const collected = buffer(tap.stream);
    await tap.offer(data.subarray(0, 100), 0);
    await tap.offer(data.subarray(200, 300), 200);
    assert.equal(tap.abandoned, true);
    await tap.offer(data.subarray(100), 100);
    assert.equal(passedAll, false, 'an abandoned tap passes nothing more on');
    await assert.rejects(collected, /offered byte 200 where the tap was at byte 100/);
    tap.complete();
    assert.equal(tap.verified, false, 'an abandoned tap never verifies');
  });

  it('gives up when a request repeats bytes it already passed on (a resumed or restarted download)', async () => {
    const tap = new ByteTap(data.length);
    const collected = buffer(tap.stream);
    await tap.offer(data.subarray(0, 700), 0);
    await tap.offer(data.subarray(500), 500);
    assert.equal(tap.abandoned, true);
    await assert.rejects(collected, TapAbandoned);
  });

  it('can be abandoned before anyone reads: the reader that comes later gets the error', async () => {
    const tap = new ByteTap(data.length);
    tap.abandon('the download resumes at byte 100');
    await new Promise((resolve) => setImmediate(resolve));
    await assert.rejects(buffer(tap.stream), /the download resumes at byte 100/);
    assert.equal(tap.abandoned, true);
  });

  it('never verifies when it did not pass on the whole blob, even when the download completed', async () => {
    const tap = new ByteTap(data.length);
    const collected = buffer(tap.stream);
    await tap.offer(data.subarray(0, 1000), 0);
    tap.complete();
    assert.equal(tap.verified, false);
    assert.equal(tap.abandoned, true);
    await assert.rejects(collected, /passed on 1000 of the blob's 2000 bytes/);
  });

  it('holds the download back while the reader is slow, and lets go when the reader stops', async () => {
    const tap = new ByteTap(8 * 1024 * 1024);
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
