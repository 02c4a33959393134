/**
 * Crash safety of the embedded store: a child process acknowledges a configuration write, starts
 * a slow upload and is SIGKILLed midway. Reopening must show the acknowledged write, no trace of
 * the blob, and a `.part` file that sweep removes.
 *
 * The file doubles as the child: with STRATA_CRASH_CHILD_DIR set it runs the child's side instead.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, it } from 'node:test';
import { configurationId } from '../src/core/configuration-id.ts';
import type { Configuration } from '../src/store/contract.ts';
import { openSqliteStore } from '../src/store/sqlite/sqlite-store.ts';

const CHILD_ENV = 'STRATA_CRASH_CHILD_DIR';
const CHUNK = 64 * 1024;
const CHUNKS = 400;

/** The i-th chunk of the slow upload; deterministic so the parent knows the blob it must not find. */
function slowChunk(i: number): Buffer {
  return Buffer.alloc(CHUNK, i % 251);
}

/** The child's side: one durable configuration write, then an upload that never finishes. */
async function runChild(dir: string): Promise<void> {
  const store = await openSqliteStore({ dir });
  const blob = await store.putBlob((async function* () { yield Buffer.from('layer bytes'); })());
  const version = await store.addVersion({ component: 'app', version: '1', blob: blob.sha256, actor: 'child' });
  const layers = [{ component: 'app', version: '1', blob: version.blob, size: version.size, createdAt: version.createdAt }];
  const configuration = await store.putConfiguration({
    name: 'prod', layers, id: configurationId([version.blob]), expectedRevision: 0, actor: 'child',
  });
  process.stdout.write(`ack ${JSON.stringify(configuration)}\n`);
  await store.putBlob((async function* () {
    for (let i = 0; i < CHUNKS; i += 1) {
      yield slowChunk(i);
      if (i === 8) process.stdout.write('uploading\n');
      await sleep(10);
    }
  })());
  process.stdout.write('finished\n');
}

/** Runs the child until it reports its upload under way, then SIGKILLs it; returns what it acknowledged. */
async function crashChild(dir: string): Promise<{ acked: Configuration; lines: string[] }> {
  const env: NodeJS.ProcessEnv = { ...process.env, [CHILD_ENV]: dir };
  // The child must not talk the test runner's protocol.
  delete env['NODE_TEST_CONTEXT'];
  const child = spawn(process.execPath, [fileURLToPath(import.meta.url)], { env, stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<NodeJS.Signals | null>((resolve) => child.once('exit', (_code, signal) => resolve(signal)));
  const lines: string[] = [];
  let acked: Configuration | undefined;
  for await (const line of createInterface({ input: child.stdout })) {
    lines.push(line);
    if (line.startsWith('ack ')) acked = JSON.parse(line.slice(4)) as Configuration;
    if (line === 'uploading') {
      await waitForStagedBytes(join(dir, 'uploads'));
      child.kill('SIGKILL');
    }
  }
  assert.equal(await exited, 'SIGKILL', `child output: ${lines.join(' | ')}`);
  assert.ok(acked, 'the child never acknowledged its configuration write');
  return { acked, lines };
}

/** Waits until some `.part` file in `uploadsDir` holds bytes, so the kill lands mid-upload. */
async function waitForStagedBytes(uploadsDir: string): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt += 1) {
    for (const entry of await readdir(uploadsDir)) {
      if (entry.endsWith('.part') && (await stat(join(uploadsDir, entry))).size > 0) return;
    }
    await sleep(10);
  }
  throw new Error('the child never staged any upload bytes');
}

/** Every file under `dir`, recursively, relative to it. */
async function filesUnder(dir: string): Promise<string[]> {
  const entries = await readdir(dir, { recursive: true, withFileTypes: true });
  return entries.filter((e) => e.isFile()).map((e) => join(e.parentPath, e.name).slice(dir.length + 1)).sort();
}

const childDir = process.env[CHILD_ENV];
if (childDir !== undefined) {
  await runChild(childDir);
} else {
  describe('sqlite store crash safety', () => {
    let dir: string | undefined;
    afterEach(async () => {
      if (dir !== undefined) await rm(dir, { recursive: true, force: true });
    });

    it('survives SIGKILL mid-upload: acknowledged writes kept, no partial blob, staged bytes swept', async () => {
      dir = await mkdtemp(join(tmpdir(), 'strata-crash-'));
      const { acked, lines } = await crashChild(dir);
      assert.ok(!lines.includes('finished'), 'the upload finished before the kill; the test proved nothing');
      const staged = (await readdir(join(dir, 'uploads'))).filter((name) => name.endsWith('.part'));
      assert.equal(staged.length, 1);

      const store = await openSqliteStore({ dir });
      try {
        assert.deepEqual(await store.getConfiguration('prod'), acked);
        const whole = createHash('sha256');
        for (let i = 0; i < CHUNKS; i += 1) whole.update(slowChunk(i));
        assert.equal(await store.statBlob(whole.digest('hex')), undefined);
        const layerBlob = acked.layers[0]?.blob ?? '';
        assert.deepEqual(await filesUnder(join(dir, 'blobs')), [join(layerBlob.slice(0, 2), layerBlob)]);
        assert.equal(await store.verifyBlob(layerBlob), true);

        const report = await store.sweep({ graceMs: 60_000, now: new Date(Date.now() + 120_000) });
        assert.deepEqual(report, { blobsDeleted: [], uploadsRemoved: 1 });
        assert.deepEqual(await readdir(join(dir, 'uploads')), []);
      } finally {
        await store.close();
      }
    });
  });
}
