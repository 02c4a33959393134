/**
 * The agent's blob cache against a real HTTP server on loopback that serves blobs from memory
 * and misbehaves on demand: cut connections, ignored ranges, wrong bytes, error statuses.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import { buffer } from 'node:stream/consumers';
import { mkdir, open, readFile, readdir, stat, writeFile } from 'node:fs/promises';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import v8 from 'node:v8';
import vm from 'node:vm';
import { after, before, beforeEach, describe, it } from 'node:test';
import { isStrataError } from '../src/core/errors.ts';
import { createHttpClient, isClientError, type HttpClient } from '../src/lib/http-client.ts';
import { BlobCache, type BlobCacheOptions } from '../src/agent/fetch/blob-cache.ts';
import { createHttpBlobSource } from '../src/agent/fetch/blob-source.ts';
import { ByteTap } from '../src/agent/fetch/byte-tap.ts';
import { tempDir } from './helpers/temp-dir.ts';

const TOKEN = 'agent-key-5b1e';

/** A blob the server can serve any byte range of without holding a copy per request. */
interface ServedBlob {
  sha256: string;
  size: number;
  read(start: number, end: number): Iterable<Buffer>;
}

/** What the server does, reset before each test. */
interface Behaviour {
  blobs: Map<string, ServedBlob>;
  /** Cut the connection after this many body bytes, on the first request for the sha only. */
  cutAfter: Map<string, number>;
  /** Answer the first request for the sha with this status. */
  failFirst: Map<string, number>;
  /** Always answer with this status. */
  status: Map<string, number>;
  wrongBytes: Set<string>;
  ignoreRange: boolean;
  delayMs: number;
  /** Pause between body chunks, to keep a download in flight. */
  chunkDelayMs: number;
}

interface Seen {
  sha256: string;
  range: string | undefined;
  authorization: string | undefined;
  bytes: number;
}

let server: http.Server;
let behaviour: Behaviour;
let requests: Seen[] = [];
let active = 0;
let maxActive = 0;
let client: HttpClient;

function freshBehaviour(): Behaviour {
  return { blobs: new Map(), cutAfter: new Map(), failFirst: new Map(), status: new Map(), wrongBytes: new Set(), ignoreRange: false, delayMs: 0, chunkDelayMs: 0 };
}

/** A blob of the given bytes, registered with the server. */
function serve(bytes: Buffer): ServedBlob {
  const blob: ServedBlob = {
    sha256: createHash('sha256').update(bytes).digest('hex'),
    size: bytes.length,
    *read(start, end) {
      for (let at = start; at < end; at += 64 * 1024) yield bytes.subarray(at, Math.min(end, at + 64 * 1024));
    },
  };
  behaviour.blobs.set(blob.sha256, blob);
  return blob;
}

/** A large blob made of one chunk repeated, so the test itself stays small in memory. */
function serveRepeated(chunk: Buffer, count: number): ServedBlob {
  const hash = createHash('sha256');
  for (let i = 0; i < count; i += 1) hash.update(chunk);
  const blob: ServedBlob = {
    sha256: hash.digest('hex'),
    size: chunk.length * count,
    *read(start, end) {
      for (let at = start; at < end;) {
        const offset = at % chunk.length;
        const piece = chunk.subarray(offset, Math.min(chunk.length, offset + end - at));
        yield piece;
        at += piece.length;
      }
    },
  };
  behaviour.blobs.set(blob.sha256, blob);
  return blob;
}

async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
  const match = /^\/v1\/blobs\/([0-9a-f]{64})$/.exec(req.url ?? '');
  if (match === null) return void res.writeHead(404).end();
  const sha256 = match[1]!;
  const seen: Seen = { sha256, range: req.headers.range, authorization: req.headers.authorization, bytes: 0 };
  const first = !requests.some((r) => r.sha256 === sha256);
  requests.push(seen);
  active += 1;
  maxActive = Math.max(maxActive, active);
  res.once('close', () => (active -= 1));
  const forced = behaviour.status.get(sha256) ?? (first ? behaviour.failFirst.get(sha256) : undefined);
  if (forced !== undefined) return void res.writeHead(forced, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'INTERNAL', message: 'told to fail' }));
  const blob = behaviour.blobs.get(sha256);
  if (blob === undefined) return void res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ code: 'BLOB_NOT_FOUND', message: 'nope' }));
  if (behaviour.delayMs > 0) await sleep(behaviour.delayMs);
  const ranged = behaviour.ignoreRange ? null : /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  const start = ranged ? Number(ranged[1]) : 0;
  if (start >= blob.size && ranged) return void res.writeHead(416, { 'content-range': `bytes */${blob.size}` }).end();
  res.writeHead(ranged ? 206 : 200, {
    'content-type': 'application/octet-stream',
    'content-length': blob.size - start,
    ...(ranged ? { 'content-range': `bytes ${start}-${blob.size - 1}/${blob.size}` } : {}),
  });
  const cut = first ? behaviour.cutAfter.get(sha256) : undefined;
  for (const chunk of blob.read(start, blob.size)) {
    if (res.destroyed) return;
    let piece = behaviour.wrongBytes.has(sha256) ? Buffer.from(chunk.map((b) => b ^ 0xff)) : chunk;
    if (cut !== undefined && seen.bytes + piece.length >= cut) {
      piece = piece.subarray(0, cut - seen.bytes);
      seen.bytes += piece.length;
      res.write(piece, () => req.socket.destroy());
      return;
    }
    seen.bytes += piece.length;
    if (!res.write(piece)) await drained(res);
    if (behaviour.chunkDelayMs > 0) await sleep(behaviour.chunkDelayMs);
  }
  res.end();
}

/** Waits until the response can take more bytes, or is gone. */
function drained(res: http.ServerResponse): Promise<void> {
  return new Promise((resolve) => {
    const done = (): void => {
      res.off('drain', done);
      res.off('close', done);
      resolve();
    };
    res.on('drain', done);
    res.on('close', done);
  });
}

/** A cache on a fresh temp dir with fast retries, reading from the test server. */
async function cacheFor(t: { after: (fn: () => Promise<void>) => void }, options: Partial<BlobCacheOptions> = {}): Promise<{ cache: BlobCache; dir: string }> {
  const dir = options.dir ?? path.join(await tempDir(t, 'strata-fetch-'), 'cache');
  await mkdir(dir, { recursive: true });
  const source = createHttpBlobSource(client, () => ({ authorization: `Agent ${TOKEN}` }));
  return { cache: new BlobCache({ source, retryBaseMs: 1, ...options, dir }), dir };
}

before(async () => {
  behaviour = freshBehaviour();
  server = http.createServer((req, res) => void handle(req, res).catch((error: unknown) => res.destroy(error as Error)));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  client = createHttpClient({ baseUrl: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
});

after(async () => {
  client.close();
  server.closeAllConnections();
  server.close();
});

beforeEach(() => {
  behaviour = freshBehaviour();
  requests = [];
  maxActive = 0;
});

describe('BlobCache', () => {
  // First, while the process is still small, so that growth is not hidden by earlier tests' heap.
  it('downloads a 100 MB blob with bounded memory', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const blob = serveRepeated(randomBytes(1024 * 1024), 100);
    // V8 frees Buffers only after tens of MB of them pile up, which alone looks like ~60 MB of
    // growth whatever the blob's size; collecting every 8 MB makes RSS show what is really live.
    const gc = forceGc();
    gc();
    const baseline = process.memoryUsage().rss;
    let peak = baseline;
    let collectedAt = 0;
    await cache.ensure([blob], {
      onProgress: (_sha, bytes) => {
        if (bytes - collectedAt >= 8 * 1024 * 1024) {
          gc();
          collectedAt = bytes;
        }
        peak = Math.max(peak, process.memoryUsage().rss);
      },
    });
    peak = Math.max(peak, process.memoryUsage().rss);
    assert.equal((await stat(path.join(dir, blob.sha256))).size, blob.size);
    const growth = (peak - baseline) / 1024 / 1024;
    t.diagnostic(`rss growth ${growth.toFixed(1)} MiB`);
    assert.ok(growth < 60, `rss grew by ${growth.toFixed(1)} MiB`);
  });

  it('downloads, verifies and then serves from the cache without another request', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const bytes = randomBytes(300_000);
    const blob = serve(bytes);
    const progress: number[] = [];
    const paths = await cache.ensure([blob], { onProgress: (_sha, n) => progress.push(n) });
    assert.equal(paths.get(blob.sha256), path.join(dir, blob.sha256));
    assert.deepEqual(await readFile(path.join(dir, blob.sha256)), bytes);
    assert.equal(progress.at(-1), blob.size);
    assert.equal(requests.length, 1);
    assert.equal(requests[0]!.authorization, `Agent ${TOKEN}`);
    assert.equal(requests[0]!.range, undefined);

    assert.deepEqual(await cache.ensure([blob]), paths);
    assert.equal(await cache.verified(blob.sha256), path.join(dir, blob.sha256));
    assert.equal(requests.length, 1);
    assert.deepEqual(await readdir(dir), [blob.sha256]);
  });

  it('resumes after a cut connection with a Range request instead of starting over', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const blob = serve(randomBytes(3 * 1024 * 1024));
    behaviour.cutAfter.set(blob.sha256, 1_000_000);
    await cache.ensure([blob]);
    assert.equal(requests.length, 2);
    assert.equal(requests[0]!.bytes, 1_000_000);
    // The client loses what it had buffered but not yet written when the socket dies, so the
    // resume point is what reached the disk: a little before the cut, never zero.
    const resumedAt = Number(/^bytes=(\d+)-$/.exec(requests[1]!.range ?? '')?.[1]);
    assert.ok(resumedAt > 500_000 && resumedAt <= 1_000_000, `resumed at ${requests[1]!.range}`);
    const transferred = requests.reduce((sum, r) => sum + r.bytes, 0);
    assert.equal(transferred, blob.size + (1_000_000 - resumedAt));
    assert.ok(transferred < blob.size * 1.1);
    assert.equal((await cache.verified(blob.sha256)), path.join(dir, blob.sha256));
  });

  it('hands an uninterrupted download to its tap, and abandons the tap when the download resumes', async (t) => {
    const { cache } = await cacheFor(t);
    const whole = serve(randomBytes(2 * 1024 * 1024));
    const clean = new ByteTap(whole.size);
    const passed = buffer(clean.stream);
    await cache.ensure([whole], { taps: new Map([[whole.sha256, clean]]) });
    assert.equal(clean.verified, true);
    assert.equal(createHash('sha256').update(await passed).digest('hex'), whole.sha256);

    const cut = serve(randomBytes(3 * 1024 * 1024));
    behaviour.cutAfter.set(cut.sha256, 1_000_000);
    const resumed = new ByteTap(cut.size);
    const abandoned = assert.rejects(buffer(resumed.stream), /the download resumes at byte \d+/);
    await cache.ensure([cut], { taps: new Map([[cut.sha256, resumed]]) });
    assert.equal(resumed.verified, false);
    await abandoned;
    assert.equal(await cache.verified(cut.sha256) !== undefined, true, 'the download itself completed');
  });

  it('resumes an existing .part left by an earlier agent process', async (t) => {
    const { cache: first, dir } = await cacheFor(t, { maxRetries: 0 });
    const bytes = randomBytes(2 * 1024 * 1024);
    const blob = serve(bytes);
    behaviour.cutAfter.set(blob.sha256, 700_000);
    await assert.rejects(first.ensure([blob]), (error) => isClientError(error, 'UNREACHABLE'));
    const partial = (await stat(path.join(dir, `${blob.sha256}.part`))).size;
    assert.ok(partial > 0 && partial <= 700_000);

    const { cache: restarted } = await cacheFor(t, { dir });
    await restarted.ensure([blob]);
    assert.deepEqual(requests.map((r) => r.range), [undefined, `bytes=${partial}-`]);
    assert.deepEqual(await readFile(path.join(dir, blob.sha256)), bytes);
    assert.deepEqual(await readdir(dir), [blob.sha256]);
  });

  it('resumes after the agent process is killed with SIGKILL mid-download', async (t) => {
    const { dir } = await cacheFor(t);
    const bytes = randomBytes(2 * 1024 * 1024);
    const blob = serve(bytes);
    behaviour.chunkDelayMs = 5;
    const module = new URL('../src/agent/fetch/', import.meta.url).href;
    const script = `
      import { BlobCache } from '${module}blob-cache.ts';
      import { createHttpBlobSource } from '${module}blob-source.ts';
      import { createHttpClient } from '${new URL('../src/lib/http-client.ts', import.meta.url).href}';
      const source = createHttpBlobSource(createHttpClient({ baseUrl: process.argv[1] }));
      await new BlobCache({ dir: process.argv[2], source }).ensure([JSON.parse(process.argv[3])]);`;
    const port = (server.address() as AddressInfo).port;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script, `http://127.0.0.1:${port}`, dir, JSON.stringify(blob)], { stdio: 'inherit' });
    const exited = once(child, 'exit');
    while (!(requests[0] !== undefined && requests[0].bytes > 500_000)) await sleep(5);
    child.kill('SIGKILL');
    assert.deepEqual(await exited, [null, 'SIGKILL']);
    behaviour.chunkDelayMs = 0;
    const partial = (await stat(path.join(dir, `${blob.sha256}.part`))).size;
    assert.ok(partial > 0 && partial < blob.size, `.part has ${partial} bytes`);

    const { cache } = await cacheFor(t, { dir });
    await cache.ensure([blob]);
    assert.deepEqual(requests.map((r) => r.range), [undefined, `bytes=${partial}-`]);
    assert.deepEqual(await readFile(path.join(dir, blob.sha256)), bytes);
  });

  it('refuses a download whose size is not the listed one before reading it', async (t) => {
    const { cache, dir } = await cacheFor(t, { maxRetries: 1 });
    const blob = serve(randomBytes(10 * 1024 * 1024));
    await assert.rejects(cache.ensure([{ sha256: blob.sha256, size: blob.size - 1 }]), (error) => isStrataError(error, 'BLOB_CORRUPT'));
    assert.equal(requests.length, 2);
    assert.deepEqual(await readdir(dir), []);
  });

  it('starts over when the server answers a range request with 200', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const bytes = randomBytes(500_000);
    const blob = serve(bytes);
    await writeFile(path.join(dir, `${blob.sha256}.part`), bytes.subarray(0, 200_000));
    behaviour.ignoreRange = true;
    await cache.ensure([blob]);
    assert.deepEqual(requests.map((r) => r.range), ['bytes=200000-']);
    assert.deepEqual(await readFile(path.join(dir, blob.sha256)), bytes);
  });

  it('throws a .part with wrong bytes away after the download and fetches again from zero', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const bytes = randomBytes(400_000);
    const blob = serve(bytes);
    await writeFile(path.join(dir, `${blob.sha256}.part`), randomBytes(100_000));
    await cache.ensure([blob]);
    assert.deepEqual(requests.map((r) => r.range), ['bytes=100000-', undefined]);
    assert.deepEqual(await readFile(path.join(dir, blob.sha256)), bytes);
  });

  it('detects a corrupt cache entry, deletes it and fetches it again', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const bytes = randomBytes(256_000);
    const blob = serve(bytes);
    const file = path.join(dir, blob.sha256);
    await cache.ensure([blob]);
    // Past the file system's timestamp granularity, so the flip shows in the mtime.
    await sleep(20);
    await flipByte(file, 1000);
    assert.equal(await cache.verified(blob.sha256), undefined);
    await assert.rejects(stat(file), { code: 'ENOENT' });
    await cache.ensure([blob]);
    assert.equal(requests.length, 2);
    assert.deepEqual(await readFile(file), bytes);

    // A fresh process has no memory of earlier checks and must hash what it finds.
    await flipByte(file, 5);
    const { cache: restarted } = await cacheFor(t, { dir });
    await restarted.ensure([blob]);
    assert.equal(requests.length, 3);
    assert.deepEqual(await readFile(file), bytes);
  });

  it('gives up with BLOB_CORRUPT when the server keeps sending wrong bytes, keeping nothing', async (t) => {
    const { cache, dir } = await cacheFor(t, { maxRetries: 2 });
    const blob = serve(randomBytes(100_000));
    behaviour.wrongBytes.add(blob.sha256);
    await assert.rejects(cache.ensure([blob]), (error) => isStrataError(error, 'BLOB_CORRUPT') && error.message.includes(blob.sha256));
    assert.equal(requests.length, 3);
    assert.deepEqual(await readdir(dir), []);
  });

  it('fails at once with BLOB_NOT_FOUND, UNAUTHENTICATED and FORBIDDEN, and retries a 503', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const missing = { sha256: 'a'.repeat(64), size: 10 };
    await assert.rejects(cache.ensure([missing]), (error) => isStrataError(error, 'BLOB_NOT_FOUND'));
    assert.equal(requests.length, 1);

    const blob = serve(randomBytes(1000));
    for (const [status, code] of [[401, 'UNAUTHENTICATED'], [403, 'FORBIDDEN']] as const) {
      requests = [];
      behaviour.status.set(blob.sha256, status);
      await assert.rejects(cache.ensure([blob]), (error) => isStrataError(error, code));
      assert.equal(requests.length, 1);
    }
    behaviour.status.clear();
    requests = [];
    behaviour.failFirst.set(blob.sha256, 503);
    await cache.ensure([blob]);
    assert.equal(requests.length, 2);
    assert.deepEqual(await readdir(dir), [blob.sha256]);
  });

  it('refuses names that are not a sha256', async (t) => {
    const { cache } = await cacheFor(t);
    await assert.rejects(cache.ensure([{ sha256: '../etc/passwd', size: 1 }]), (error) => isStrataError(error, 'INVALID_HASH'));
    assert.throws(() => cache.verified('ABC'), (error) => isStrataError(error, 'INVALID_HASH'));
  });

  it('downloads at most `concurrency` blobs at once', async (t) => {
    const { cache, dir } = await cacheFor(t, { concurrency: 3 });
    behaviour.delayMs = 40;
    const blobs = Array.from({ length: 8 }, () => serve(randomBytes(50_000)));
    const paths = await cache.ensure(blobs);
    assert.equal(paths.size, 8);
    assert.equal(requests.length, 8);
    assert.equal(maxActive, 3);
    assert.equal((await readdir(dir)).length, 8);
  });

  it('fetches a sha once when it is wanted twice, in one call or in two at the same time', async (t) => {
    const { cache } = await cacheFor(t);
    behaviour.delayMs = 30;
    const a = serve(randomBytes(80_000));
    const b = serve(randomBytes(80_000));
    const paths = await cache.ensure([a, b, a]);
    assert.equal(paths.size, 2);
    assert.equal(requests.length, 2);

    const c = serve(randomBytes(80_000));
    const [one, two] = await Promise.all([cache.ensure([c]), cache.ensure([c, a])]);
    assert.equal(one.get(c.sha256), two.get(c.sha256));
    assert.equal(requests.filter((r) => r.sha256 === c.sha256).length, 1);
  });

  it('stops on abort and keeps the .part for the next attempt', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const bytes = randomBytes(4 * 1024 * 1024);
    const blob = serve(bytes);
    const controller = new AbortController();
    const reason = new Error('deploy superseded');
    await assert.rejects(
      cache.ensure([blob], { signal: controller.signal, onProgress: (_sha, n) => n > 1_000_000 && controller.abort(reason) }),
      (error) => error === reason,
    );
    const partial = (await stat(path.join(dir, `${blob.sha256}.part`))).size;
    assert.ok(partial > 0 && partial < blob.size);
    await cache.ensure([blob]);
    assert.equal(requests[1]!.range, `bytes=${partial}-`);
    assert.deepEqual(await readFile(path.join(dir, blob.sha256)), bytes);
  });

  it('collects only what is not kept', async (t) => {
    const { cache, dir } = await cacheFor(t);
    const a = serve(randomBytes(1000));
    const b = serve(randomBytes(1000));
    await cache.ensure([a, b]);
    const stray = 'c'.repeat(64);
    await writeFile(path.join(dir, `${stray}.part`), 'partial');
    await writeFile(path.join(dir, 'notes.txt'), 'not ours');
    const beforeWrites = Date.now() - 60_000;
    assert.deepEqual(await cache.collect(new Set([a.sha256]), { modifiedBefore: beforeWrites }), [], 'files written since the cut-off are spared');
    const removed = await cache.collect(new Set([a.sha256]));
    assert.deepEqual(removed.sort(), [b.sha256, `${stray}.part`].sort());
    assert.deepEqual((await readdir(dir)).sort(), [a.sha256, 'notes.txt'].sort());
    assert.equal(await cache.verified(b.sha256), undefined);
  });

});

/** A function that runs a full garbage collection, exposing it when the process was not started with --expose-gc. */
function forceGc(): () => void {
  const exposed = (globalThis as { gc?: () => void }).gc;
  if (exposed !== undefined) return exposed;
  v8.setFlagsFromString('--expose-gc');
  return vm.runInNewContext('gc') as () => void;
}

/** Flips one byte of a file in place, as a failing disk would. */
async function flipByte(file: string, position: number): Promise<void> {
  const handle = await open(file, 'r+');
  try {
    const byte = Buffer.alloc(1);
    await handle.read(byte, 0, 1, position);
    byte[0] = byte[0]! ^ 0x01;
    await handle.write(byte, 0, 1, position);
  } finally {
    await handle.close();
  }
}
