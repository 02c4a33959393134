/**
 * A tap on a blob's download, so the agent can unpack while the bytes arrive instead of after.
 * The download offers every chunk with its offset; the tap passes contiguous bytes on to its
 * stream (skipping what a resumed request repeats), hashes them itself, and ends the stream only
 * when those very bytes hash to the blob's name. Anything unusual — a gap, a restart from zero,
 * a blob that was already cached, a shared download — abandons the tap, and the caller unpacks
 * from the verified cached file instead. Backpressure from the consumer slows the download.
 */
import { createHash } from 'node:crypto';
import { PassThrough } from 'node:stream';

/** Why the tap's stream ended early; the caller then falls back to the cached file. */
export class TapAbandoned extends Error {
  override readonly name = 'TapAbandoned';
}

/** The bytes of one blob as they are downloaded. */
export class ByteTap {
  readonly sha256: string;
  readonly stream = new PassThrough({ highWaterMark: 1024 * 1024 });
  #position = 0;
  #hash = createHash('sha256');
  #abandoned = false;
  #verified = false;

  constructor(sha256: string) {
    this.sha256 = sha256;
  }

  /** True once the tap gave up; what its stream carried must not be used. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** True once every byte passed on hashed to the blob's name and the stream ended. */
  get verified(): boolean {
    return this.#verified;
  }

  /** Offers the bytes at `offset`; resolves when the consumer can take more. */
  async offer(chunk: Buffer, offset: number): Promise<void> {
    if (this.#abandoned || this.stream.destroyed) return;
    if (offset > this.#position) return this.abandon('the download skipped bytes the tap had not seen');
    const skip = this.#position - offset;
    if (skip >= chunk.length) return;
    const fresh = skip > 0 ? chunk.subarray(skip) : chunk;
    this.#position += fresh.length;
    this.#hash.update(fresh);
    if (this.stream.write(fresh)) return;
    await new Promise<void>((resolve) => {
      this.stream.once('drain', resolve);
      this.stream.once('close', resolve);
    });
  }

  /** The download finished and verified its file: end the stream if the tap's own bytes agree. */
  complete(): void {
    if (this.#abandoned || this.stream.destroyed) return;
    if (this.#hash.digest('hex') !== this.sha256) return this.abandon('the bytes passed on do not hash to the blob');
    this.#verified = true;
    this.stream.end();
  }

  /** Gives up: the stream errors, and the caller uses the cached file. Idempotent. */
  abandon(reason: string): void {
    if (this.#abandoned || this.#verified) return;
    this.#abandoned = true;
    this.stream.destroy(new TapAbandoned(reason));
  }
}
