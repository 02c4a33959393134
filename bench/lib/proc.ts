/**
 * Timing child processes and watching their memory from /proc (Linux only): wall-clock from
 * spawn to exit, peak resident set size and CPU time, sampled while they run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { readFileSync, writeFileSync } from 'node:fs';

/** What /proc says about one process at one moment. */
export interface ProcSample {
  /** Resident set size, bytes. */
  rss: number;
  /** Highest resident set size since start (or since the last `resetPeakRss`), bytes. */
  hwm: number;
  /** User + system CPU time, seconds. */
  cpu: number;
}

const CLOCK_TICKS = 100;

/** Reads one process's memory and CPU time; undefined once it has exited. */
export function readProc(pid: number): ProcSample | undefined {
  try {
    const status = readFileSync(`/proc/${pid}/status`, 'utf8');
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Fields after the command name, which may itself hold spaces and parentheses.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    const kib = (name: string): number => Number(new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(status)?.[1] ?? 0) * 1024;
    return { rss: kib('VmRSS'), hwm: kib('VmHWM'), cpu: (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS };
  } catch {
    return undefined;
  }
}

/**
 * Resets a process's VmHWM to its current RSS (Linux ≥ 4.0, `clear_refs` value 5), so the next
 * reading is the peak of what follows; false when the kernel or permissions do not allow it.
 */
export function resetPeakRss(pid: number): boolean {
  try {
    writeFileSync(`/proc/${pid}/clear_refs`, '5');
    return true;
  } catch {
    return false;
  }
}

/** The peaks seen by a sampler. */
export interface Peaks {
  /** Highest sampled VmRSS, bytes. */
  sampledRss: number;
  /** Highest VmHWM read, bytes: catches peaks between samples when the HWM was reset before. */
  hwm: number;
  /** CPU seconds used between the first and the last sample. */
  cpu: number;
  samples: number;
}

/** Samples `pid` every `intervalMs` until stopped; `stop()` takes one last sample and returns the peaks. */
export function sampleProc(pid: number, intervalMs = 100): { stop(): Peaks } {
  const peaks: Peaks = { sampledRss: 0, hwm: 0, cpu: 0, samples: 0 };
  let firstCpu: number | undefined;
  const take = (): void => {
    const sample = readProc(pid);
    if (sample === undefined) return;
    firstCpu ??= sample.cpu;
    peaks.sampledRss = Math.max(peaks.sampledRss, sample.rss);
    peaks.hwm = Math.max(peaks.hwm, sample.hwm);
    peaks.cpu = sample.cpu - firstCpu;
    peaks.samples += 1;
  };
  take();
  const timer = setInterval(take, intervalMs);
  return {
    stop() {
      clearInterval(timer);
      take();
      return peaks;
    },
  };
}

/** How a timed child process ended. */
export interface TimedRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  seconds: number;
  stdout: string;
  stderr: string;
  /** Peaks of the child itself (not of its own children). */
  peaks: Peaks;
}

/** The children running now, so an interrupted benchmark can stop them. */
export const running = new Set<ChildProcess>();

/** Runs a command with an argv array (no shell), timing it from spawn to exit and sampling its memory. */
export async function runTimed(
  command: string,
  args: string[],
  options: { env?: Record<string, string>; cwd?: string; onStart?: () => void } = {},
): Promise<TimedRun> {
  const started = process.hrtime.bigint();
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], ...(options.env ? { env: options.env } : {}), ...(options.cwd ? { cwd: options.cwd } : {}) });
  running.add(child);
  const sampler = child.pid === undefined ? undefined : sampleProc(child.pid);
  options.onStart?.();
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
  child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
  // The last sample must come before the process is reaped, or /proc/<pid> is gone; 'exit' is
  // the earliest moment we hear of it, so the 100 ms samples carry the peak in practice.
  const peaksAtExit = new Promise<Peaks>((resolve) => child.once('exit', () => resolve(sampler?.stop() ?? { sampledRss: 0, hwm: 0, cpu: 0, samples: 0 })));
  const [code, signal] = (await once(child, 'close')) as [number | null, NodeJS.Signals | null];
  const seconds = Number(process.hrtime.bigint() - started) / 1e9;
  running.delete(child);
  return { code, signal, seconds, stdout, stderr, peaks: await peaksAtExit };
}
