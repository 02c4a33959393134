/**
 * The garbage-collection pacer (src/lib/gc-pacer.ts): a full collection, scheduled on V8's task
 * runner, each time the streamed bytes pass the threshold, and a young one every few MiB; a full
 * one at once when a deploy settles; nothing at all without V8's gc function.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { COLLECT_EVERY_BYTES, GcPacer } from '../src/lib/gc-pacer.ts';

type Call = { type?: string; execution?: string } | undefined;
const MiB = 1024 * 1024;

describe('gc pacer', () => {
  it('asks for a full collection each time the bytes streamed pass the threshold', () => {
    const calls: Call[] = [];
    const pacer = new GcPacer((options) => void calls.push(options), 10 * MiB, 100 * MiB);
    assert.equal(pacer.active, true);
    for (let chunk = 0; chunk < 9; chunk += 1) pacer.streamed(MiB);
    assert.deepEqual(calls, [], 'nothing below the threshold');
    pacer.streamed(MiB);
    assert.deepEqual(calls, [{ type: 'major', execution: 'async' }]);
    for (let chunk = 0; chunk < 25; chunk += 1) pacer.streamed(MiB);
    assert.equal(calls.length, 3, '35 MiB in 1 MiB chunks: three collections');
    assert.equal(pacer.collections, 3);
  });

  it('asks for a young-generation collection each time the bytes streamed pass the smaller threshold', () => {
    const calls: Call[] = [];
    const pacer = new GcPacer((options) => void calls.push(options), 100 * MiB, 2 * MiB);
    for (let chunk = 0; chunk < 3; chunk += 1) pacer.streamed(MiB / 2);
    assert.deepEqual(calls, [], 'nothing below the threshold');
    pacer.streamed(MiB / 2);
    assert.deepEqual(calls, [{ type: 'minor' }]);
    for (let chunk = 0; chunk < 12; chunk += 1) pacer.streamed(MiB / 2);
    assert.equal(calls.length, 4, '8 MiB in 512 KiB chunks: four young collections');
    assert.equal(pacer.collections, 0, 'no full collection among them');
  });

  it('collects at once, synchronously, when a deploy settles, and counts afresh after it', () => {
    const calls: Call[] = [];
    const pacer = new GcPacer((options) => void calls.push(options), 10 * MiB, 100 * MiB);
    pacer.streamed(9 * MiB);
    pacer.settle();
    assert.deepEqual(calls, [{ type: 'major', execution: 'sync' }]);
    pacer.streamed(9 * MiB);
    assert.equal(calls.length, 1, 'the bytes before the settle no longer count');
  });

  it("does nothing without V8's gc function", () => {
    const pacer = new GcPacer(undefined);
    pacer.streamed(10 * COLLECT_EVERY_BYTES);
    pacer.settle();
    assert.equal(pacer.active, false);
    assert.equal(pacer.collections, 0);
  });

  it('uses the real gc function where node exposes it', async () => {
    const { execFileSync } = await import('node:child_process');
    const url = new URL('../src/lib/gc-pacer.ts', import.meta.url).href;
    const script = `const { gcPacer } = await import(${JSON.stringify(url)}); gcPacer.streamed(${COLLECT_EVERY_BYTES}); gcPacer.settle(); console.log(JSON.stringify({ active: gcPacer.active, collections: gcPacer.collections }));`;
    const run = (flags: string[], env: Record<string, string> = {}): unknown => JSON.parse(execFileSync(process.execPath, [...flags, '--input-type=module', '-e', script], { encoding: 'utf8', env: { PATH: process.env['PATH'] ?? '', ...env }, timeout: 30_000 }));
    assert.deepEqual(run(['--expose-gc']), { active: true, collections: 2 });
    assert.deepEqual(run([]), { active: false, collections: 0 });
    assert.deepEqual(run(['--expose-gc'], { STRATA_GC_PACING: 'off' }), { active: false, collections: 0 });
  });
});
