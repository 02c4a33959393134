/**
 * Downloads one blob into `<dir>/<sha256>.part`, resuming from whatever the file already holds
 * (after a broken connection or an agent restart, kill -9 included), and renames it to
 * `<dir>/<sha256>` only once it is fsynced and hashes to its name with the expected size.
 */
import { createHash, type Hash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { open, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { StrataError } from '../../core/errors.ts';
import { syncDirectory } from '../../lib/atomic-file.ts';
import { fullJitter, sleep } from '../../lib/backoff.ts';
import { ClientError, isClientError, isUnreachable } from '../../lib/http-client.ts';
import type { BlobResponse, BlobSource } from './blob-source.ts';
import { hashFileInto } from './file-hash.ts';
import type { ByteTap } from './byte-tap.ts';
import { isTransientStatus, planBody, statusError } from './response-check.ts';
import { gcPacer } from '../../lib/gc-pacer.ts';

/** Everything one download needs; the cache fills it from its own options. */
export interface DownloadOptions {
  source: BlobSource;
  dir: string;
  sha256: string;
  size: number;
  maxRetries: number;
  retryBaseMs: number;
  /** Longest silence inside a body before the connection counts as broken. */
  idleTimeoutMs: number;
  signal?: AbortSignal;
  /** Bytes of the blob on disk so far, resumed bytes included. */
  onProgress?: (bytes: number) => void;
  /** Also hands the bytes to an unpacker as they arrive (see byte-tap.ts). */
  tap?: ByteTap;
}

/** A failure worth another attempt; `progressed` when the attempt added bytes to the .part. */
class Retryable extends Error {
  readonly error: unknown;
  readonly progressed: boolean;

  constructor(error: unknown, progressed: boolean) {
    super('retryable download failure', { cause: error });
    this.error = error;
    this.progressed = progressed;
  }
}

type Outcome = 'complete' | { corrupt: string };

/** Longest wait between two attempts, whatever the attempt number. */
const MAX_BACKOFF_MS = 30_000;

/** Downloads, verifies and installs one blob; resolves with its final path. */
export async function downloadBlob(options: DownloadOptions): Promise<string> {
  try {
    const file = await downloadVerified(options);
    options.tap?.complete();
    return file;
  } finally {
    options.tap?.abandon('the download did not complete');
  }
}

async function downloadVerified(options: DownloadOptions): Promise<string> {
  const { dir, sha256, signal } = options;
  const part = path.join(dir, `${sha256}.part`);
  const final = path.join(dir, sha256);
  // Counted apart: an attempt that moved the .part forward is progress, a bad blob never is, so
  // a flaky link does not exhaust the retries that guard against a server serving wrong bytes.
  let corruptions = 0;
  let stalls = 0;
  for (;;) {
    signal?.throwIfAborted();
    let retry: number;
    try {
      const outcome = await attempt(options, part);
      if (outcome === 'complete') {
        await rename(part, final);
        await syncDirectory(dir);
        return final;
      }
      await rm(part, { force: true });
      // Whatever the tap passed on came from a bad download.
      options.tap?.abandon('the download was corrupt and starts over');
      corruptions += 1;
      if (corruptions > options.maxRetries) {
        throw new StrataError('BLOB_CORRUPT', `blob ${sha256} never arrived intact in ${corruptions} attempts (${outcome.corrupt}); nothing was kept`, {
          details: { sha256, attempts: corruptions },
        });
      }
      retry = corruptions;
    } catch (error) {
      if (signal?.aborted) throw signal.reason;
      if (!(error instanceof Retryable)) throw error;
      stalls = error.progressed ? 1 : stalls + 1;
      if (stalls > options.maxRetries) throw error.error;
      retry = stalls;
    }
    await sleep(fullJitter(retry - 1, options.retryBaseMs, MAX_BACKOFF_MS), signal);
  }
}

/** One request: resumes the .part, streams the body onto it and checks the result. */
async function attempt(options: DownloadOptions, part: string): Promise<Outcome> {
  const { sha256, size, signal } = options;
  let start = await fileSize(part);
  if (start > size) {
    await rm(part, { force: true });
    start = 0;
  }
  let hash = createHash('sha256');
  // The .part's bytes are hashed again rather than trusted: they may predate a crash.
  if (start > 0 && (await hashFileInto(hash, part, start, signal)) !== start) throw new Error(`${part} shrank while it was read`);
  options.onProgress?.(start);
  // The tap's bytes are verified by this hash only when one request carried all of them.
  if (start > 0) options.tap?.abandon(`the download resumes at byte ${start}`);
  if (start === size) return finish(part, hash, sha256);

  const response = await openBlob(options, start);
  if (response.status !== 200 && response.status !== 206) {
    const error = await statusError(response.status, response.body, sha256);
    if (response.status === 416) {
      // The server says the .part is already past the blob's end: its bytes cannot be right.
      await rm(part, { force: true });
      throw new Retryable(error, false);
    }
    throw isTransientStatus(response.status) ? new Retryable(error, false) : error;
  }
  const plan = planBody(response.status, response.headers, start, size);
  if (plan.kind === 'wrong-size') {
    response.body.destroy();
    return { corrupt: plan.reason };
  }
  if (plan.kind === 'whole' && start > 0) {
    // The server ignored the Range header: start over rather than append the blob to itself.
    start = 0;
    hash = createHash('sha256');
  }
  const received = await writeBody(options, response, part, start, hash);
  if (received === 'overrun') return { corrupt: `server sent more than ${size} bytes` };
  if (start + received < size) {
    const broken = new ClientError('UNREACHABLE', `the server ended blob ${sha256} after ${start + received} of ${size} bytes`);
    throw new Retryable(broken, received > 0);
  }
  return finish(part, hash, sha256);
}

/** Opens the blob, from `start` when the .part has bytes; transient network failures are retryable. */
async function openBlob(options: DownloadOptions, start: number): Promise<BlobResponse> {
  try {
    return await options.source.open(options.sha256, start > 0 ? { start } : undefined, options.signal === undefined ? {} : { signal: options.signal });
  } catch (error) {
    if (isUnreachable(error)) throw new Retryable(error, false);
    throw error;
  }
}

/**
 * Streams the body onto the .part (appending at `start`, or truncating when 0) with backpressure,
 * hashing as it goes; resolves with the bytes written, or 'overrun' when the server sent too many.
 */
async function writeBody(options: DownloadOptions, response: BlobResponse, part: string, start: number, hash: Hash): Promise<number | 'overrun'> {
  const { sha256, size, signal } = options;
  let received = 0;
  let overrun = false;
  const idle = setTimeout(() => {
    response.body.destroy(new ClientError('TIMEOUT', `no bytes of blob ${sha256} for ${options.idleTimeoutMs / 1000} s`));
  }, options.idleTimeoutMs);
  const meter = new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      idle.refresh();
      if (start + received + chunk.byteLength > size) {
        overrun = true;
        return callback(new Error('overrun'));
      }
      const offset = start + received;
      received += chunk.byteLength;
      hash.update(chunk);
      gcPacer.streamed(chunk.byteLength);
      options.onProgress?.(start + received);
      if (options.tap === undefined) return callback(null, chunk);
      options.tap.offer(chunk, offset).then(() => callback(null, chunk), callback);
    },
  });
  const file = createWriteStream(part, { flags: start > 0 ? 'a' : 'w' });
  try {
    await pipeline(response.body, meter, file, signal === undefined ? {} : { signal });
    return received;
  } catch (error) {
    if (signal?.aborted) throw signal.reason;
    if (overrun) return 'overrun';
    throw classifyStreamError(error, sha256, start + received, received > 0);
  } finally {
    clearTimeout(idle);
  }
}

/** A full disk is the operator's to fix; other file errors are fatal; the rest is the network's. */
function classifyStreamError(error: unknown, sha256: string, at: number, progressed: boolean): unknown {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    return new StrataError('INSUFFICIENT_STORAGE', `no space left on the agent's disk for blob ${sha256}`, { details: { sha256 }, cause: error });
  }
  if (typeof (error as NodeJS.ErrnoException).path === 'string') return error;
  const broken = isClientError(error)
    ? error
    : new ClientError('UNREACHABLE', `the connection broke while downloading blob ${sha256} at byte ${at}: ${code ?? (error as Error).message}`, { cause: error });
  return new Retryable(broken, progressed);
}

/** fsyncs the .part and checks it; 'complete' when its hash is the blob's name (the size was tracked on the way). */
async function finish(part: string, hash: Hash, sha256: string): Promise<Outcome> {
  const handle = await open(part, 'r+');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
  const actual = hash.digest('hex');
  return actual === sha256 ? 'complete' : { corrupt: `bytes hash to ${actual}` };
}

/** Size of a file, 0 when it does not exist. */
async function fileSize(file: string): Promise<number> {
  try {
    return (await stat(file)).size;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
    throw error;
  }
}
