/**
 * Runs a deploy hook: argv `[hook]`, never a shell, in its own process group (detached) so a
 * timeout can stop the hook and everything it started. Output is captured interleaved and bounded.
 *
 * Every outcome is a result, never a throw: a hook that cannot be started (missing, not
 * executable, no `#!` line) is reported like a failing hook, with `spawnError` set to the errno
 * code and `output` saying what went wrong, because the agent treats both the same way (report
 * `failed`, keep the old release, retry with backoff).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { OutputTail } from './output-tail.ts';

/** How long to wait for the process to die after SIGKILL before giving up on it. */
const KILL_SETTLE_MS = 250;

/** How long to keep reading output after the hook exits, for bytes still in the pipes. */
const OUTPUT_SETTLE_MS = 200;

/** Input of `runHook`. */
export interface RunHookOptions {
  /** Path of the executable (absolute, or relative to `cwd`). */
  hook: string;
  cwd: string;
  /** The complete environment (see `hookEnvironment`). */
  env: Record<string, string>;
  timeoutMs: number;
  /** Time between SIGTERM and SIGKILL after a timeout; default 5 s. */
  killGraceMs?: number;
  /** Bytes of output kept, from the end; default 64 KiB. */
  maxOutputBytes?: number;
  /** Aborting stops the hook as a timeout does, and the result says `aborted`. */
  signal?: AbortSignal;
}

/** How a hook run ended. Success is `exitCode === 0`. */
export interface HookResult {
  exitCode: number | null;
  /** The signal that ended the hook, if one did. */
  signal: string | null;
  timedOut: boolean;
  aborted: boolean;
  /** The tail of stdout and stderr, interleaved in arrival order; or why the hook could not start. */
  output: string;
  /** Bytes of output dropped from the front to keep the tail bounded. */
  outputDropped: number;
  durationMs: number;
  /** The errno code when the hook could not be started (ENOENT, EACCES, ENOEXEC, ...). */
  spawnError?: string;
}

/** The one-line explanation of a failed start, by errno code. */
function spawnMessage(hook: string, error: NodeJS.ErrnoException): string {
  switch (error.code) {
    case 'ENOENT':
      return `hook ${hook} is missing (ENOENT), or its working directory is`;
    case 'EACCES':
      return `hook ${hook} is not executable (EACCES)`;
    case 'ENOEXEC':
      return `hook ${hook} is not a program the system can run (ENOEXEC; a script needs a #! line)`;
    default:
      return `hook ${hook} could not be started (${error.code ?? 'error'}: ${error.message})`;
  }
}

/** Sends `signal` to the hook's whole process group; a group that is already gone is fine. */
function killGroup(child: ChildProcess, signal: NodeJS.Signals): void {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, signal);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ESRCH') throw error;
  }
}

/** Runs the hook to completion (or timeout) and describes how it ended. */
export function runHook(options: RunHookOptions): Promise<HookResult> {
  const { hook, cwd, env, timeoutMs, killGraceMs = 5000, maxOutputBytes = 64 * 1024, signal } = options;
  const started = performance.now();
  const tail = new OutputTail(maxOutputBytes);
  return new Promise<HookResult>((resolve) => {
    let timedOut = false;
    let aborted = false;
    let settled = false;
    let exited = false;
    const timers: NodeJS.Timeout[] = [];
    let child: ChildProcess;

    const finish = (outcome: { exitCode: number | null; signal: string | null; output?: string; spawnError?: string }): void => {
      if (settled) return;
      settled = true;
      for (const timer of timers) clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      child.stdout?.destroy();
      child.stderr?.destroy();
      const result: HookResult = {
        exitCode: outcome.exitCode,
        signal: outcome.signal,
        timedOut,
        aborted,
        output: outcome.output ?? tail.text(),
        outputDropped: tail.dropped,
        durationMs: Math.round(performance.now() - started),
      };
      if (outcome.spawnError !== undefined) result.spawnError = outcome.spawnError;
      resolve(result);
    };

    const terminate = (): void => {
      killGroup(child, 'SIGTERM');
      timers.push(
        setTimeout(() => {
          killGroup(child, 'SIGKILL');
          // A process stuck in the kernel may never exit; the deploy must not hang on it.
          timers.push(setTimeout(() => finish({ exitCode: null, signal: 'SIGKILL' }), KILL_SETTLE_MS));
        }, killGraceMs),
      );
    };
    const onAbort = (): void => {
      if (settled || exited || aborted || timedOut) return;
      aborted = true;
      terminate();
    };

    child = spawn(hook, [], { cwd, env, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout?.on('data', (chunk: Buffer) => tail.push(chunk));
    child.stderr?.on('data', (chunk: Buffer) => tail.push(chunk));
    child.on('error', (error: NodeJS.ErrnoException) => {
      // After a successful start, 'error' only reports a failed kill; the exit still comes.
      if (child.pid === undefined) finish({ exitCode: null, signal: null, output: spawnMessage(hook, error), spawnError: error.code ?? 'error' });
    });
    child.on('exit', (exitCode, exitSignal) => {
      exited = true;
      // Stragglers of a stopped hook die with it; a hook that exits normally may leave daemons behind.
      if (timedOut || aborted) killGroup(child, 'SIGKILL');
      const outcome = { exitCode, signal: exitSignal };
      // Output still in the pipes arrives before 'close'; a background child holding them open is not waited for.
      child.once('close', () => finish(outcome));
      timers.push(setTimeout(() => finish(outcome), OUTPUT_SETTLE_MS));
    });
    if (child.pid === undefined) return; // the 'error' event follows
    timers.push(
      setTimeout(() => {
        if (exited) return;
        timedOut = true;
        terminate();
      }, timeoutMs),
    );
    if (signal?.aborted) onAbort();
    else signal?.addEventListener('abort', onAbort, { once: true });
  });
}
