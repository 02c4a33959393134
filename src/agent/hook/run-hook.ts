/**
 * Runs a deploy hook: argv `[hook]`, never a shell, in its own process group (detached) so a
 * timeout can stop the hook and everything it started. Output is captured interleaved and bounded.
 *
 * Every outcome is a result, never a throw: a hook that cannot be started (missing, not
 * executable, no `#!` line) is reported like a failing hook, with `spawnError` set to the errno
 * code and `output` saying what went wrong, because the agent treats both the same way (report
 * `failed`, keep the old release, retry with backoff).
 */
import { OutputTail } from './output-tail.ts';
import { runProcess } from '../run-process.ts';

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
  /** Learns the hook's pid, which is also its process group's id, once it started. */
  onSpawn?: (pid: number) => void;
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
function spawnMessage(hook: string, code: string): string {
  switch (code) {
    case 'ENOENT':
      return `hook ${hook} is missing (ENOENT), or its working directory is`;
    case 'EACCES':
      return `hook ${hook} is not executable (EACCES)`;
    case 'ENOEXEC':
      return `hook ${hook} is not a program the system can run (ENOEXEC; a script needs a #! line)`;
    default:
      return `hook ${hook} could not be started (${code})`;
  }
}

/** Runs the hook to completion (or timeout) and describes how it ended. */
export async function runHook(options: RunHookOptions): Promise<HookResult> {
  const { hook, cwd, env, timeoutMs, killGraceMs = 5000, maxOutputBytes = 64 * 1024, signal, onSpawn } = options;
  // The report wants one tail with stdout and stderr interleaved as they arrived.
  const tail = new OutputTail(maxOutputBytes);
  const result = await runProcess({
    argv: [hook], cwd, env, timeoutMs, killGraceMs, maxOutputBytes: 1024,
    ...(signal ? { signal } : {}),
    ...(onSpawn ? { onSpawn } : {}),
    onStdout: (chunk) => tail.push(chunk),
    onStderr: (chunk) => tail.push(chunk),
  });
  const hookResult: HookResult = {
    exitCode: result.exitCode, signal: result.signal, timedOut: result.timedOut, aborted: result.aborted,
    output: result.spawnError ? spawnMessage(hook, result.spawnError) : tail.text(),
    outputDropped: tail.dropped,
    durationMs: result.durationMs,
  };
  if (result.spawnError !== undefined) hookResult.spawnError = result.spawnError;
  return hookResult;
}
