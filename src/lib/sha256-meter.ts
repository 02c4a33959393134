/** A pass-through stream that hashes (sha256) and counts the bytes flowing through it. */
import { createHash } from 'node:crypto';
import { Transform, type TransformCallback } from 'node:stream';

/** Put it in a pipeline; read `bytes` and `sha256()` once the pipeline has finished. */
export class Sha256Meter extends Transform {
  bytes = 0;
  readonly #hash = createHash('sha256');

  override _transform(chunk: Buffer, _encoding: BufferEncoding, callback: TransformCallback): void {
    this.#hash.update(chunk);
    this.bytes += chunk.byteLength;
    callback(null, chunk);
  }

  /** The hex sha256 of every byte that passed (call once). */
  sha256(): string {
    return this.#hash.digest('hex');
  }
}
