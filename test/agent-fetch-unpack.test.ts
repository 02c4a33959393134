/**
 * fetchAndUnpack with a blob source the test drives byte by byte: the first layer whose blob is
 * missing unpacks while it downloads, even when other blobs are missing too, and those layers
 * follow from the cache in order; a failed download of a later blob fails the deploy and leaves
 * no tree behind.
 */
import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { describe, it } from 'node:test';
import * as tar from 'tar';
import { BlobCache } from '../src/agent/fetch/blob-cache.ts';
import type { BlobSource } from '../src/agent/fetch/blob-source.ts';
import { fetchAndUnpack } from '../src/agent/fetch-and-unpack.ts';
import type { ResolvedLayer } from '../src/store/contract.ts';
import { waitFor } from './helpers/strata-agent.ts';
import { tempDir } from './helpers/temp-dir.ts';

const LIMITS = { maxFiles: 1000, maxBytes: 64 * 1024 * 1024 };

/** A tar.gz of `files`, as a layer of the configuration. */
async function layer(root: string, component: string, files: Record<string, string | Buffer>): Promise<{ layer: ResolvedLayer; bytes: Buffer }> {
  const dir = path.join(root, 'src', component);
  await mkdir(dir, { recursive: true });
  for (const [name, content] of Object.entries(files)) await writeFile(path.join(dir, name), content);
  const file = path.join(root, `${component}.tar.gz`);
  await tar.create({ gzip: true, portable: true, cwd: dir, file }, Object.keys(files));
  const bytes = await readFile(file);
  const blob = createHash('sha256').update(bytes).digest('hex');
  return { layer: { component, version: 'v1', blob, size: bytes.length, createdAt: '2024-01-01T00:00:00.000Z' }, bytes };
}

/**
 * Serves blobs from memory. A blob listed in `held` sends its first `held` bytes and then waits
 * for `release(sha256)`; a blob in `failing` answers 404.
 */
function source(blobs: Map<string, Buffer>, held: Map<string, number>, failing: Set<string> = new Set()) {
  const waiting = new Map<string, () => void>();
  const requested: string[] = [];
  const blobSource: BlobSource = {
    async open(sha256) {
      requested.push(sha256);
      if (failing.has(sha256)) return { status: 404, headers: { 'content-type': 'application/json' }, body: PassThrough.from([JSON.stringify({ code: 'BLOB_NOT_FOUND', message: 'gone' })]) };
      const bytes = blobs.get(sha256)!;
      const body = new PassThrough();
      const cut = held.get(sha256);
      if (cut === undefined) body.end(bytes);
      else {
        body.write(bytes.subarray(0, cut));
        waiting.set(sha256, () => body.end(bytes.subarray(cut)));
      }
      return { status: 200, headers: { 'content-length': String(bytes.length) }, body };
    },
  };
  return { blobSource, requested, release: (sha256: string) => waiting.get(sha256)?.() };
}

describe('fetchAndUnpack', () => {
  it('unpacks the first missing layer while it downloads, though later layers are missing too, and then those from the cache', async (t) => {
    const root = await tempDir(t);
    // The first entry is small: it is on disk long before the rest of its layer has arrived.
    const base = await layer(root, 'base', { 'first.txt': 'from base', 'shared.txt': 'base wins?', 'big.bin': randomBytes(512 * 1024) });
    const top = await layer(root, 'top', { 'shared.txt': 'top wins', 'top.txt': 'from top' });
    const served = source(new Map([[base.layer.blob, base.bytes], [top.layer.blob, top.bytes]]), new Map([[base.layer.blob, 16 * 1024]]));
    const cache = new BlobCache({ dir: path.join(root, 'cache'), source: served.blobSource });
    const target = path.join(root, 'release');
    let downloadedAt = 0;
    const deploy = fetchAndUnpack({ cache, layers: [base.layer, top.layer], target, limits: LIMITS, signal: new AbortController().signal, onDownloaded: () => (downloadedAt = Date.now()) });

    // The base layer's first file is written while most of its blob is still held back.
    assert.equal(await waitFor('base layer unpacking from its download', () => readFile(path.join(target, 'first.txt'), 'utf8').catch(() => undefined), 10_000, 20), 'from base');
    assert.equal(downloadedAt, 0, 'nothing was downloaded in full yet');
    // The other missing blob downloads meanwhile, into the cache.
    await waitFor('top layer in the cache', async () => (await cache.verified(top.layer.blob)) !== undefined, 10_000, 20);
    assert.equal(await stat(path.join(target, 'top.txt')).catch(() => undefined), undefined, 'layers keep their order');

    served.release(base.layer.blob);
    await deploy;
    assert.ok(downloadedAt > 0);
    assert.equal(await readFile(path.join(target, 'shared.txt'), 'utf8'), 'top wins', 'the later layer overwrites');
    assert.equal(await readFile(path.join(target, 'top.txt'), 'utf8'), 'from top');
    assert.equal((await stat(path.join(target, 'big.bin'))).size, 512 * 1024);
    assert.deepEqual(served.requested.sort(), [base.layer.blob, top.layer.blob].sort(), 'each blob fetched once');
  });

  it('fails, leaving no tree, when a later layer\'s blob cannot be downloaded', async (t) => {
    const root = await tempDir(t);
    const base = await layer(root, 'base', { 'first.txt': 'from base' });
    const top = await layer(root, 'top', { 'top.txt': 'from top' });
    const served = source(new Map([[base.layer.blob, base.bytes], [top.layer.blob, top.bytes]]), new Map(), new Set([top.layer.blob]));
    const cache = new BlobCache({ dir: path.join(root, 'cache'), source: served.blobSource });
    const target = path.join(root, 'release');
    await assert.rejects(
      fetchAndUnpack({ cache, layers: [base.layer, top.layer], target, limits: LIMITS, signal: new AbortController().signal, onDownloaded: () => undefined }),
      { code: 'BLOB_NOT_FOUND' },
    );
    assert.equal(await stat(target).catch(() => undefined), undefined, 'the half-built tree is gone');
  });
});
