/**
 * Runs a program for the agent — an order's command or the deploy hook: argv with no shell, in
 * its own process group so a timeout or a kill stops everything it started, with stdout and
 * stderr kept apart and each bounded to its tail. Every outcome is a result, never a throw.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { OutputTail } from './hook/output-tail.ts';

/** How long to wait after SIGKILL before reporting anyway (a process stuck in the kernel). */
const KILL_SETTLE_MS = 250;
/** How long to keep reading after exit, for bytes still in the pipes. */
const OUTPUT_SETTLE_MS = 200;

/** Input of `runProcess`. */
export interface RunProcessOptions {
  argv: string[];
  env: Record<string, string>;
  cwd: string;
  timeoutMs: number;
  maxOutputBytes: number;
  /** Time between SIGTERM and SIGKILL; default 2 s. */
  killGraceMs?: number;
  /** Aborting stops the process group as a timeout does. */
  signal?: AbortSignal;
  /** Sees stdout as it arrives (progress parsing). */
  onStdout?: (chunk: Buffer) => void;
  /** Sees stderr as it arrives. */
  onStderr?: (chunk: Buffer) => void;
  /** Learns the pid (which is also the process group's id) once the program started. */
  onSpawn?: (pid: number) => void;
}

/** How the process ended. */
export interface ProcessResult {
  exitCode: number | null;
  signal: string | null;
  timedOut: boolean;
  aborted: boolean;
  stdout: string;
  stderr: string;
  truncated: { stdout: boolean; stderr: boolean };
  durationMs: number;
  /** The errno code when the program could not be started. */
  spawnError?: string;
}

/** Sends `signal` to the child's whole process group; a group already gone is fine. */
export function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Runs argv to completion, timeout or abort, and describes how it ended. */
export function runProcess(options: RunProcessOptions): Promise<ProcessResult> {
  const { argv, env, cwd, timeoutMs, maxOutputBytes, killGraceMs = 2000, signal } = options;
  const started = performance.now();
  const out = new OutputTail(maxOutputBytes);
  const err = new OutputTail(maxOutputBytes);
  return new Promise<ProcessResult>((resolve) => {
    let timedOut = false;
    let aborted = false;
    let settled = false;
    let exited = false;
    const timers: NodeJS.Timeout[] = [];

    const finish = (exitCode: number | null, exitSignal: string | null, spawnError?: NodeJS.ErrnoException): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      resolve({
        exitCode, signal: exitSignal, timedOut, aborted,
        stdout: out.text(),
        stderr: spawnError ? `${argv[0]} could not be started (${spawnError.code ?? spawnError.message})` : err.text(),
        truncated: { stdout: out.dropped > 0, stderr: err.dropped > 0 },
        durationMs: Math.round(performance.now() - started),
        ...(spawnError ? { spawnError: spawnError.code ?? 'error' } : {}),
      });
    };
    const terminate = (): void => {
      killGroup(child, 'SIGTERM');
      timers.push(setTimeout(() => {
        killGroup(child, 'SIGKILL');
        timers.push(setTimeout(() => finish(null, 'SIGKILL'), KILL_SETTLE_MS));
      }, killGraceMs));
    };
    const onAbort = (): void => {
      if (settled || exited || aborted || timedOut) return;
      aborted = true;
      terminate();
    };

    const [program, ...args] = argv;
    const child = spawn(program!, args, { cwd, env, detached: true, shell: false, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => {
      out.push(chunk);
      options.onStdout?.(chunk);
    });
    child.stderr?.on('data', (chunk: Buffer) => {
      err.push(chunk);
      options.onStderr?.(chunk);
    });
    child.on('error', (error: NodeJS.ErrnoException) => {
      if (child.pid === undefined) finish(null, null, error);
    });
    child.on('exit', (exitCode, exitSignal) => {
      exited = true;
      // Whatever a stopped program started dies with it; a normal exit may leave daemons on purpose.
      if (timedOut || aborted) killGroup(child, 'SIGKILL');
      child.once('close', () => finish(exitCode, exitSignal));
      timers.push(setTimeout(() => finish(exitCode, exitSignal), OUTPUT_SETTLE_MS));
    });
    if (child.pid === undefined) return;
    options.onSpawn?.(child.pid);
    timers.push(setTimeout(() => {
      if (exited) return;
      timedOut = true;
      terminate();
    }, Math.max(0, timeoutMs)));
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
