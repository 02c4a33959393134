/**
 * A small young generation for Strata's long-running processes. Uploads, downloads and unpacks
 * stream through many short-lived buffers (TLS records, gunzip output); with V8's default
 * 16 MiB semi-spaces that garbage alone adds 70+ MiB of RSS. With 1 MiB semi-spaces the server
 * and the agent stay near their idle size at no measured cost in throughput
 * (docs/benchmarks.md). V8 reads the flag only at start-up, so the process replaces itself
 * (same pid, nothing left behind) when it was started without it.
 */

const FLAG = '--max-semi-space-size=1';

/** Re-executes this process with the flag when it runs `strata <command>` from the command line without it. */
export function reexecWithSmallYoungGeneration(command: string): void {
  if (process.execArgv.some((arg) => arg.startsWith('--max-semi-space-size')) || typeof process.execve !== 'function') return;
  // Only a process started as `strata <command>`, never a caller that runs the CLI in-process.
  if (process.argv[2] !== command) return;
  process.execve(process.execPath, [process.execPath, FLAG, ...process.execArgv, ...process.argv.slice(1)], process.env);
}
