/**
 * Pure parsers for one process's `/proc/<pid>/stat` and `/proc/<pid>/status`: the CPU time it
 * used and its resident memory. Times are in clock ticks; Linux reports them at USER_HZ, which is
 * 100 on every architecture Strata runs on (Node does not expose sysconf(_SC_CLK_TCK)).
 */

/** Clock ticks per second in `/proc/<pid>/stat`. */
export const CLOCK_TICKS_PER_SECOND = 100;

/** What `/proc/<pid>/stat` says about a process. */
export interface ProcessStat {
  pid: number;
  state: string;
  processGroup: number;
  /** User plus system CPU time, in clock ticks. */
  cpuTicks: number;
}

/** Parses `/proc/<pid>/stat`; the command name may hold spaces and parentheses, so fields are counted from the last `)`. */
export function parseProcessStat(text: string): ProcessStat {
  const close = text.lastIndexOf(')');
  if (close < 0) throw new Error('process stat is malformed');
  // After ") ": field 3 (state) is index 0, so field N is index N - 3.
  const fields = text.slice(close + 2).trim().split(' ');
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  if (fields.length < 13 || !Number.isFinite(utime) || !Number.isFinite(stime)) throw new Error('process stat is malformed');
  return { pid: Number.parseInt(text, 10), state: fields[0]!, processGroup: Number(fields[2]), cpuTicks: utime + stime };
}

/** Parses the resident set size (VmRSS, in bytes) from `/proc/<pid>/status`; 0 for a zombie, which has none. */
export function parseStatusRss(text: string): number {
  const match = /^VmRSS:\s+(\d+)\s+kB/m.exec(text);
  return match ? Number(match[1]) * 1024 : 0;
}

/** Percent of one core used between two readings `elapsedMs` apart. */
export function processCpuPercent(ticksBefore: number, ticksAfter: number, elapsedMs: number): number {
  if (elapsedMs <= 0 || ticksAfter < ticksBefore) return 0;
  return ((ticksAfter - ticksBefore) / CLOCK_TICKS_PER_SECOND) * 1000 / elapsedMs * 100;
}
