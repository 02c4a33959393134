/**
 * Garbage collection paced by the bytes a process streams, for the agent's download and unpack.
 *
 * Every chunk a TLS socket or gunzip hands over is a fresh Buffer: a small JS object holding
 * 16–64 KiB outside the JS heap. V8 schedules collections by heap growth, so while half a
 * gigabyte streams through, the heap barely grows and the dead chunks' memory piles up until V8's
 * external-memory allowance (64 MiB) forces a full collection: 25–30 MiB of RSS at the peak that
 * hold nothing. Chunks in flight outlive a young-generation collection or two, and with 1 MiB
 * semi-spaces (src/lib/lean-start.ts) that promotes them, so only a full collection frees those:
 * measured, young collections alone did not lower the peak. A full collection every 128 MiB streamed
 * keeps the peak about 25 MiB lower for a few percent more time; it is scheduled on V8's own
 * task runner (`execution: 'async'`), so the main thread spends well under a millisecond on each.
 * Every 64 MiB cost about 0.45 s more per 512 MiB apply for no lower peak once the download tap
 * held less (fetch/byte-tap.ts).
 *
 * It also asks for a young-generation collection every 2 MiB streamed. V8 frees a dead chunk's
 * memory outside the heap only when a collection finds the chunk dead, and it starts young
 * collections by the heap's own allocations. Code that allocates little around the chunks it
 * passes on (the tar reader, core/archive/tar-reader.ts) therefore gets few of them, and the dead
 * chunks' memory outside the heap grows until V8 starts full collections on its own: measured, 120
 * full collections in a 512 MiB apply, one every 35 ms, against 13 with a young collection every
 * 2 MiB, which cost 0.3 ms each and took 1.3 s of CPU off the apply. Every 4 or 8 MiB was too
 * seldom, every 1 MiB peaked 10 MiB higher. Measured in docs/benchmarks.md, "Agent memory" and
 * "Apply".
 *
 * Works only where V8's `gc` function is exposed (`--expose-gc`, which `strata agent` starts
 * with); elsewhere — tests that import the agent's modules, or `STRATA_GC_PACING=off` — it does
 * nothing and V8 collects on its own schedule.
 */

/** V8's collection function as `--expose-gc` installs it. */
type Collect = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => unknown;

/** Bytes streamed between two full collections. */
export const COLLECT_EVERY_BYTES = 128 * 1024 * 1024;

/** Bytes streamed between two young-generation collections. */
export const SCAVENGE_EVERY_BYTES = 2 * 1024 * 1024;

/** Counts streamed bytes and collects when enough went through. */
export class GcPacer {
  readonly #collect: Collect | undefined;
  readonly #every: number;
  readonly #scavengeEvery: number;
  #pending = 0;
  #pendingYoung = 0;
  #collections = 0;

  constructor(collect: Collect | undefined, everyBytes = COLLECT_EVERY_BYTES, scavengeEveryBytes = SCAVENGE_EVERY_BYTES) {
    this.#collect = collect;
    this.#every = everyBytes;
    this.#scavengeEvery = scavengeEveryBytes;
  }

  /** Whether this pacer collects at all. */
  get active(): boolean {
    return this.#collect !== undefined;
  }

  /** Full collections this pacer asked for so far. */
  get collections(): number {
    return this.#collections;
  }

  /**
   * Accounts `bytes` that went through a short-lived buffer: a young-generation collection every
   * `scavengeEveryBytes` (synchronous: a fraction of a millisecond), and a full one scheduled every
   * `everyBytes`.
   */
  streamed(bytes: number): void {
    if (this.#collect === undefined) return;
    this.#pendingYoung += bytes;
    if (this.#pendingYoung >= this.#scavengeEvery) {
      this.#pendingYoung = 0;
      this.#collect({ type: 'minor' });
    }
    this.#pending += bytes;
    if (this.#pending < this.#every) return;
    this.#pending = 0;
    this.#collections += 1;
    void this.#collect({ type: 'major', execution: 'async' });
  }

  /** A full collection now, when a burst of streaming (a deploy) ended, so the idle process keeps none of its garbage. */
  settle(): void {
    if (this.#collect === undefined) return;
    this.#pending = 0;
    this.#pendingYoung = 0;
    this.#collections += 1;
    this.#collect({ type: 'major', execution: 'sync' });
  }
}

/** The process's pacer: active when `gc` is exposed and STRATA_GC_PACING is not `off`. */
export const gcPacer = new GcPacer(process.env['STRATA_GC_PACING'] === 'off' ? undefined : (globalThis as { gc?: Collect }).gc);
