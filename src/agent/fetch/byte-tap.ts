/**
 * A tap on a blob's download, so the agent can unpack while the bytes arrive instead of after.
 * The download offers every chunk of one request with its offset; the tap passes the chunks on to
 * its stream and ends the stream when the download has verified its file. It hashes nothing
 * itself: the download hashes each of those very chunks before offering it, so the tap serves
 * only a request that starts at byte 0 and runs uninterrupted to the end, and then the download's
 * hash is the hash of exactly what the tap passed on. Anything else — a resumed or restarted
 * request, a gap, a blob that was already cached, a shared download — abandons the tap, and the
 * caller unpacks from the verified cached file instead. Backpressure from the consumer slows the
 * download.
 */
import { PassThrough } from 'node:stream';

/** Why the tap's stream ended early; the caller then falls back to the cached file. */
export class TapAbandoned extends Error {
  override readonly name = 'TapAbandoned';
}

/** The bytes of one blob as they are downloaded. */
export class ByteTap {
  /** The blob's size: the tap verifies only when it passed on this many bytes. */
  readonly size: number;
  /**
   * 256 KiB of chunks may wait for the unpacker. With 1 MiB, chunks waited long enough to be
   * promoted out of the young generation, and the apply peaked 4 MiB higher for no gain in time.
   */
  readonly stream = new PassThrough({ highWaterMark: 256 * 1024 });
  #position = 0;
  #abandoned = false;
  #verified = false;
  readonly #onPassedAll: (() => void) | undefined;

  /** `onPassedAll` runs once, when the last byte of the blob has been passed on (not yet verified). */
  constructor(size: number, onPassedAll?: () => void) {
    this.size = size;
    this.#onPassedAll = onPassedAll;
    // A reader learns of abandonment from the stream's error, whenever it reads. The tap may be
    // abandoned before anyone reads (a download that resumes at once): that must not be an
    // unhandled 'error' event, which would end the process.
    this.stream.on('error', () => undefined);
  }

  /** True once the tap gave up; what its stream carried must not be used. */
  get abandoned(): boolean {
    return this.#abandoned;
  }

  /** True once every byte of the blob passed on, the download verified them, and the stream ended. */
  get verified(): boolean {
    return this.#verified;
  }

  /** Offers the bytes at `offset`, which must be where the tap is; resolves when the consumer can take more. */
  async offer(chunk: Buffer, offset: number): Promise<void> {
    if (this.#abandoned || this.stream.destroyed) return;
    if (offset !== this.#position) return this.abandon(`the download offered byte ${offset} where the tap was at byte ${this.#position}`);
    this.#position += chunk.length;
    if (this.#position === this.size) this.#onPassedAll?.();
    if (this.stream.write(chunk)) return;
    await new Promise<void>((resolve) => {
      this.stream.once('drain', resolve);
      this.stream.once('close', resolve);
    });
  }

  /**
   * The download verified its file, having hashed every chunk it offered since it abandoned the tap
   * on any resume or restart: end the stream when those chunks were the whole blob.
   */
  complete(): void {
    if (this.#abandoned || this.stream.destroyed) return;
    if (this.#position !== this.size) return this.abandon(`the tap passed on ${this.#position} of the blob's ${this.size} bytes`);
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
