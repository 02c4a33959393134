/** Exponential backoff with full jitter (a random wait between 0 and the capped exponential), so a fleet never retries in step. */

/** The wait before retry number `attempt` (0-based). */
export function fullJitter(attempt: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}

/** The shortest wait before a failed deploy is retried, whatever the configured base: never a busy loop. */
export const MIN_RETRY_MS = 100;

/**
 * The wait before retry number `failures` (1-based) of a failed deploy: exponential, half fixed and
 * half random, at least MIN_RETRY_MS.
 */
export function retryDelay(failures: number, baseMs: number, capMs: number, random: () => number = Math.random): number {
  const ceiling = Math.min(capMs, baseMs * 2 ** Math.min(failures - 1, 30));
  return Math.max(MIN_RETRY_MS, Math.round(ceiling / 2 + random() * (ceiling / 2)));
}

/** Waits `ms`, or less if `signal` aborts; never rejects. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done(): void {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
