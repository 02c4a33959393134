/**
 * Garbage collection paced by the bytes a process streams, for the agent's download and unpack.
 *
 * Every chunk a TLS socket or gunzip hands over is a fresh Buffer: a small JS object holding
 * 16–64 KiB outside the JS heap. V8 schedules collections by heap growth, so while half a
 * gigabyte streams through, the heap barely grows and the dead chunks' memory piles up until V8's
 * external-memory allowance (64 MiB) forces a full collection: 25–30 MiB of RSS at the peak that
 * hold nothing. Chunks in flight outlive a young-generation collection or two, and with 1 MiB
 * semi-spaces (src/lib/lean-start.ts) that promotes them, so only a full collection frees them:
 * measured, young collections alone changed nothing. A full collection every 128 MiB streamed
 * keeps the peak about 25 MiB lower for a few percent more time; it is scheduled on V8's own
 * task runner (`execution: 'async'`), so the main thread spends well under a millisecond on each.
 * Every 64 MiB cost about 0.45 s more per 512 MiB apply for no lower peak once the download tap
 * held less (fetch/byte-tap.ts). Measured in docs/benchmarks.md, "Agent memory" and "Apply".
 *
 * Works only where V8's `gc` function is exposed (`--expose-gc`, which `strata agent` starts
 * with); elsewhere — tests that import the agent's modules, or `STRATA_GC_PACING=off` — it does
 * nothing and V8 collects on its own schedule.
 */

/** V8's collection function as `--expose-gc` installs it. */
type Collect = (options?: { type?: 'minor' | 'major'; execution?: 'sync' | 'async' }) => unknown;

/** Bytes streamed between two full collections. */
export const COLLECT_EVERY_BYTES = 128 * 1024 * 1024;

/** Counts streamed bytes and collects when enough went through. */
export class GcPacer {
  readonly #collect: Collect | undefined;
  readonly #every: number;
  #pending = 0;
  #collections = 0;

  constructor(collect: Collect | undefined, everyBytes = COLLECT_EVERY_BYTES) {
    this.#collect = collect;
    this.#every = everyBytes;
  }

  /** Whether this pacer collects at all. */
  get active(): boolean {
    return this.#collect !== undefined;
  }

  /** Collections this pacer asked for so far. */
  get collections(): number {
    return this.#collections;
  }

  /** Accounts `bytes` that went through a short-lived buffer; schedules a full collection every `everyBytes`. */
  streamed(bytes: number): void {
    if (this.#collect === undefined) return;
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
    this.#collections += 1;
    this.#collect({ type: 'major', execution: 'sync' });
  }
}

/** The process's pacer: active when `gc` is exposed and STRATA_GC_PACING is not `off`. */
export const gcPacer = new GcPacer(process.env['STRATA_GC_PACING'] === 'off' ? undefined : (globalThis as { gc?: Collect }).gc);
