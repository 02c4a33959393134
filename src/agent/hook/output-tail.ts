/**
 * The bounded tail of a hook's output: stdout and stderr chunks in arrival order, keeping only the
 * last `limit` bytes, because the end of the output is where a failing script says why.
 */

/** Collects the last `limit` bytes written to it. */
export class OutputTail {
  readonly #limit: number;
  readonly #chunks: Buffer[] = [];
  #size = 0;
  #dropped = 0;

  constructor(limit: number) {
    this.#limit = Math.max(0, limit);
  }

  /** Bytes dropped from the front so far. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Appends a chunk, dropping the oldest bytes beyond the limit. */
  push(chunk: Buffer): void {
    if (chunk.length >= this.#limit) {
      this.#dropped += this.#size + chunk.length - this.#limit;
      this.#chunks.length = 0;
      this.#chunks.push(chunk.subarray(chunk.length - this.#limit));
      this.#size = this.#limit;
      return;
    }
    this.#chunks.push(chunk);
    this.#size += chunk.length;
    while (this.#size > this.#limit) {
      const first = this.#chunks[0];
      if (first === undefined) break;
      const excess = this.#size - this.#limit;
      if (first.length <= excess) {
        this.#chunks.shift();
        this.#size -= first.length;
        this.#dropped += first.length;
      } else {
        this.#chunks[0] = first.subarray(excess);
        this.#size -= excess;
        this.#dropped += excess;
      }
    }
  }

  /** The tail as text; a UTF-8 character cut by the front edge is dropped rather than garbled. */
  text(): string {
    let bytes = Buffer.concat(this.#chunks, this.#size);
    if (this.#dropped > 0) {
      let skip = 0;
      while (skip < bytes.length && skip < 3 && ((bytes[skip] ?? 0) & 0xc0) === 0x80) skip += 1;
      bytes = bytes.subarray(skip);
    }
    return bytes.toString('utf8');
  }
}
