/**
 * The agent's blob cache: `<dir>/<sha256>` holds verified blobs, `<dir>/<sha256>.part` partial
 * downloads. Blobs are fetched in parallel (bounded), resumed, verified before they become
 * visible, and re-verified when read, so a corrupt entry is deleted and fetched again.
 * One BlobCache owns its directory: two instances on the same directory may write the same .part.
 */
import { lstat, mkdir, readdir, rm } from 'node:fs/promises';
import path from 'node:path';
import { StrataError } from '../../core/errors.ts';
import { isSha256 } from '../../protocol/names.ts';
import type { BlobSource } from './blob-source.ts';
import { downloadBlob } from './download.ts';
import type { ByteTap } from './byte-tap.ts';
import { fileFingerprint, hashFile } from './file-hash.ts';
import { Limiter } from './limiter.ts';

export type { BlobResponse, BlobSource } from './blob-source.ts';

/** How a BlobCache reaches the server and how hard it tries. */
export interface BlobCacheOptions {
  /** The cache directory (the agent uses `<data>/cache`); created when missing. */
  dir: string;
  source: BlobSource;
  /** Downloads (and verifications) at once; default 4. */
  concurrency?: number;
  /** Retries per blob after a broken connection without progress, or after a corrupt download; default 5. */
  maxRetries?: number;
  /** First backoff ceiling; doubles per retry up to 30 s, with full jitter; default 500 ms. */
  retryBaseMs?: number;
  /** Silence inside a response body after which the connection counts as broken; default 60 s. */
  idleTimeoutMs?: number;
}

/** Per-call options of `ensure`. */
export interface EnsureOptions {
  signal?: AbortSignal;
  /** Bytes of that blob present so far (resumed bytes included; its size on a cache hit). */
  onProgress?: (sha256: string, bytes: number) => void;
  /**
   * Taps on blobs this call downloads (see byte-tap.ts). A tap is used only when this call starts
   * the blob's download; otherwise (cached, or already being fetched) it is abandoned.
   */
  taps?: ReadonlyMap<string, ByteTap>;
}

/** One blob being obtained, shared by every caller that wants it meanwhile. */
interface Flight {
  promise: Promise<string>;
  controller: AbortController;
  waiters: number;
  listeners: Set<(bytes: number) => void>;
}

/** A content-addressed cache of blobs fetched from a BlobSource. */
export class BlobCache {
  readonly #dir: string;
  readonly #source: BlobSource;
  readonly #limiter: Limiter;
  readonly #maxRetries: number;
  readonly #retryBaseMs: number;
  readonly #idleTimeoutMs: number;
  /** sha256 → fingerprint of the file when it last hashed to its name. */
  readonly #verified = new Map<string, string>();
  readonly #checks = new Map<string, Promise<string | undefined>>();
  readonly #flights = new Map<string, Flight>();
  #ready: Promise<void> | undefined;

  constructor(options: BlobCacheOptions) {
    this.#dir = options.dir;
    this.#source = options.source;
    this.#limiter = new Limiter(options.concurrency ?? 4);
    this.#maxRetries = options.maxRetries ?? 5;
    this.#retryBaseMs = options.retryBaseMs ?? 500;
    this.#idleTimeoutMs = options.idleTimeoutMs ?? 60_000;
  }

  /** Ensures every blob is in the cache and verified, downloading missing ones in parallel; resolves with sha256 → local path. */
  async ensure(blobs: readonly { sha256: string; size: number }[], options: EnsureOptions = {}): Promise<Map<string, string>> {
    const wanted = new Map<string, number>();
    for (const { sha256, size } of blobs) {
      checkSha256(sha256);
      if (!Number.isSafeInteger(size) || size < 0) throw new StrataError('BAD_REQUEST', `blob ${sha256} has an invalid size ${size}`, { details: { sha256, size } });
      if ((wanted.get(sha256) ?? size) !== size) throw new StrataError('BAD_REQUEST', `blob ${sha256} is listed with two sizes`, { details: { sha256 } });
      wanted.set(sha256, size);
    }
    await this.#ensureDir();
    // One failure stops the others, and ensure settles only once they all have: nothing keeps
    // writing into the cache after it returns.
    const stop = new AbortController();
    const signal = options.signal === undefined ? stop.signal : AbortSignal.any([options.signal, stop.signal]);
    let failure: { error: unknown } | undefined;
    const paths = new Map<string, string>();
    await Promise.allSettled([...wanted].map(async ([sha256, size]) => {
      try {
        const onProgress = options.onProgress === undefined ? undefined : (bytes: number) => options.onProgress?.(sha256, bytes);
        paths.set(sha256, await this.#obtain(sha256, size, signal, onProgress, options.taps?.get(sha256)));
      } catch (error) {
        failure ??= { error };
        stop.abort();
      }
    }));
    for (const tap of options.taps?.values() ?? []) tap.abandon('the blob was not downloaded by this call');
    if (options.signal?.aborted) throw options.signal.reason;
    if (failure !== undefined) throw failure.error;
    return paths;
  }

  /** Path of a verified cached blob, or undefined; a good check is remembered while (size, mtimeMs, ino) stay the same, and a file that does not hash to its name is deleted. */
  verified(sha256: string): Promise<string | undefined> {
    checkSha256(sha256);
    let check = this.#checks.get(sha256);
    if (check === undefined) {
      check = this.#verify(sha256).finally(() => this.#checks.delete(sha256));
      this.#checks.set(sha256, check);
    }
    return check;
  }

  /** Deletes cached blobs and partial downloads not in `keep` (and not being fetched); resolves with the removed file names. */
  async collect(keep: ReadonlySet<string>, options: { modifiedBefore?: number } = {}): Promise<string[]> {
    await this.#ensureDir();
    const removed: string[] = [];
    for (const name of (await readdir(this.#dir)).sort()) {
      const match = /^([0-9a-f]{64})(\.part)?$/.exec(name);
      // Only names this cache writes: anything else in the directory is not ours to delete.
      if (match === null) continue;
      const sha256 = match[1]!;
      if (keep.has(sha256) || this.#flights.has(sha256)) continue;
      // A blob written since `keep` was decided may be one a deploy has just fetched and is about to unpack.
      if (options.modifiedBefore !== undefined && ((await lstat(path.join(this.#dir, name)).catch(() => undefined))?.mtimeMs ?? 0) >= options.modifiedBefore) continue;
      await rm(path.join(this.#dir, name), { force: true });
      if (match[2] === undefined) this.#verified.delete(sha256);
      removed.push(name);
    }
    return removed;
  }

  /** Joins the flight for `sha256`, starting one when there is none (or only one being abandoned). */
  #obtain(sha256: string, size: number, signal: AbortSignal, onProgress?: (bytes: number) => void, tap?: ByteTap): Promise<string> {
    let flight = this.#flights.get(sha256);
    if (flight !== undefined && !flight.controller.signal.aborted) tap?.abandon('the blob is already being downloaded');
    if (flight === undefined || flight.controller.signal.aborted) {
      // An abandoned flight may still be closing its .part; the next one starts after it.
      const previous = flight?.promise.catch(() => undefined) ?? Promise.resolve(undefined);
      const controller = new AbortController();
      const listeners = new Set<(bytes: number) => void>();
      const report = (bytes: number): void => listeners.forEach((listener) => listener(bytes));
      const created: Flight = {
        controller,
        listeners,
        waiters: 0,
        promise: previous.then(() => this.#limiter.run(() => this.#fetch(sha256, size, controller.signal, report, tap))),
      };
      created.promise.catch(() => undefined).finally(() => {
        if (this.#flights.get(sha256) === created) this.#flights.delete(sha256);
      });
      this.#flights.set(sha256, created);
      flight = created;
    }
    return waitFor(flight, signal, onProgress);
  }

  /** Returns the cached blob after verifying it, or downloads it. */
  async #fetch(sha256: string, size: number, signal: AbortSignal, onProgress: (bytes: number) => void, tap?: ByteTap): Promise<string> {
    signal.throwIfAborted();
    const cached = await this.verified(sha256);
    if (cached !== undefined) {
      tap?.abandon('the blob is cached');
      onProgress(size);
      return cached;
    }
    const file = await downloadBlob({
      source: this.#source,
      dir: this.#dir,
      sha256,
      size,
      maxRetries: this.#maxRetries,
      retryBaseMs: this.#retryBaseMs,
      idleTimeoutMs: this.#idleTimeoutMs,
      signal,
      onProgress,
      ...(tap ? { tap } : {}),
    });
    const print = await fileFingerprint(file);
    if (print !== undefined) this.#verified.set(sha256, print);
    return file;
  }

  /** Hashes the cached file unless its fingerprint matches the last good check; deletes it when bad. */
  async #verify(sha256: string): Promise<string | undefined> {
    const file = path.join(this.#dir, sha256);
    const before = await fileFingerprint(file);
    if (before === undefined) {
      this.#verified.delete(sha256);
      return undefined;
    }
    if (this.#verified.get(sha256) === before) return file;
    let actual: string;
    try {
      actual = (await hashFile(file)).sha256;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
      throw error;
    }
    const after = await fileFingerprint(file);
    if (actual !== sha256) {
      this.#verified.delete(sha256);
      // Only the file that was hashed: one that replaced it meanwhile is not known to be bad.
      if (after === before) await rm(file, { force: true });
      return undefined;
    }
    if (after !== before) return this.#verify(sha256);
    this.#verified.set(sha256, before);
    return file;
  }

  /** Creates the cache directory once; a failure is retried by the next call. */
  #ensureDir(): Promise<void> {
    this.#ready ??= mkdir(this.#dir, { recursive: true }).then(() => undefined, (error: unknown) => {
      this.#ready = undefined;
      throw error;
    });
    return this.#ready;
  }
}

/** Waits for a flight on behalf of one caller; when every caller has given up, the flight is aborted. */
function waitFor(flight: Flight, signal: AbortSignal, onProgress?: (bytes: number) => void): Promise<string> {
  if (signal.aborted) return Promise.reject(signal.reason);
  flight.waiters += 1;
  if (onProgress !== undefined) flight.listeners.add(onProgress);
  return new Promise<string>((resolve, reject) => {
    let done = false;
    const leave = (): void => {
      done = true;
      signal.removeEventListener('abort', onAbort);
      if (onProgress !== undefined) flight.listeners.delete(onProgress);
      flight.waiters -= 1;
    };
    const onAbort = (): void => {
      if (done) return;
      leave();
      if (flight.waiters === 0) flight.controller.abort(signal.reason);
      reject(signal.reason);
    };
    signal.addEventListener('abort', onAbort, { once: true });
    flight.promise.then(
      (file) => {
        if (done) return;
        leave();
        resolve(file);
      },
      (error: unknown) => {
        if (done) return;
        leave();
        reject(error);
      },
    );
  });
}

/** Refuses anything that is not a sha256, which also keeps names from escaping the directory. */
function checkSha256(sha256: string): void {
  if (!isSha256(sha256)) throw new StrataError('INVALID_HASH', `"${sha256}" is not a sha256 (64 lower-case hex digits)`, { details: { sha256 } });
}
