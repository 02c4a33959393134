/**
 * Preloaded into a process under study (`node --import ./bench/lib/memory-probe.ts …`): samples
 * `process.memoryUsage()` every 20 ms and, at exit, writes the peak of each field and the last
 * sample as JSON to the file named by STRATA_BENCH_PROBE. Adds well under 1 MiB to the process.
 */
import { writeFileSync } from 'node:fs';

const out = process.env['STRATA_BENCH_PROBE'];
if (out) {
  const fields = ['rss', 'heapTotal', 'heapUsed', 'external', 'arrayBuffers'] as const;
  const peak: Record<string, number> = { rss: 0, heapTotal: 0, heapUsed: 0, external: 0, arrayBuffers: 0 };
  let last: Record<string, number> = {};
  let samples = 0;
  const take = (): void => {
    const usage = process.memoryUsage();
    last = {};
    for (const field of fields) {
      peak[field] = Math.max(peak[field]!, usage[field]);
      last[field] = usage[field];
    }
    samples += 1;
  };
  const timer = setInterval(take, 20);
  timer.unref();
  const write = (): void => {
    take();
    writeFileSync(out, JSON.stringify({ peak, last, samples }));
  };
  process.once('exit', write);
  // A daemon's last sample is what it looked like idle: also write on demand (SIGUSR2).
  process.on('SIGUSR2', write);
}
