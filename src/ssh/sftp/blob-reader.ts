/**
 * Reads one blob for deploy-agent's SFTP view front to back, reopening at the requested offset
 * when a client seeks. Once closed it stays closed: a READ still queued when CLOSE arrives, or a
 * store read already under way, must not leave a blob stream (an fd, a NATS consumer) open.
 */
import type { Readable } from 'node:stream';
import type { Store } from '../../store/contract.ts';

/** A blob opened by deploy-agent; `read()` after `close()` rejects. */
export class BlobReader {
  readonly #store: Store;
  readonly #sha256: string;
  readonly size: number;
  #stream: Readable | undefined;
  #chunks: AsyncIterator<Buffer> | undefined;
  #pending: Buffer = Buffer.alloc(0);
  #position = 0;
  #closed = false;

  constructor(store: Store, sha256: string, size: number) {
    this.#store = store;
    this.#sha256 = sha256;
    this.size = size;
  }

  /** Up to `length` bytes at `offset`; undefined at the end of the blob. Rejects once closed. */
  async read(offset: number, length: number): Promise<Buffer | undefined> {
    this.#assertOpen();
    if (offset >= this.size) return undefined;
    if (!this.#chunks || offset !== this.#position) {
      this.#release();
      const { stream } = await this.#store.getBlob(this.#sha256, offset === 0 ? undefined : { start: offset });
      if (this.#closed) {
        // Closed while the store was opening it: nobody else will ever release this stream.
        stream.destroy();
        this.#assertOpen();
      }
      this.#stream = stream;
      this.#chunks = stream[Symbol.asyncIterator]() as AsyncIterator<Buffer>;
      this.#pending = Buffer.alloc(0);
      this.#position = offset;
    }
    const chunks = this.#chunks!;
    while (this.#pending.length < length) {
      const next = await chunks.next();
      this.#assertOpen();
      if (next.done) break;
      this.#pending = this.#pending.length === 0 ? next.value : Buffer.concat([this.#pending, next.value]);
    }
    const out = this.#pending.subarray(0, length);
    this.#pending = this.#pending.subarray(out.length);
    this.#position += out.length;
    return out.length > 0 ? out : undefined;
  }

  /** Releases the open stream, and any opened later by a read already under way; idempotent. */
  close(): void {
    this.#closed = true;
    this.#release();
  }

  #release(): void {
    this.#stream?.destroy();
    this.#stream = undefined;
    this.#chunks = undefined;
    this.#pending = Buffer.alloc(0);
  }

  #assertOpen(): void {
    if (this.#closed) throw new Error('handle closed');
  }
}
